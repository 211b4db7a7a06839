// What a BI tool does through pgjdbc (DBeaver, Metabase, Tableau): open a foreign table without
// WHERE, read LIMIT 0 metadata, list tables with the FOREIGN TABLE type, run a prepared
// statement past pgjdbc's server-prepare threshold, fetch with a fetch size of 10, and refresh a
// materialized view. Usage: java BiPgjdbc.java JDBC_URL SCHEMA EXPECTED_RUNS
import java.sql.*;
import java.util.*;

public class BiPgjdbc {
    static int passed = 0, failed = 0;

    static void check(String name, boolean ok, String detail) {
        if (ok) passed++; else failed++;
        System.out.println((ok ? "ok: " : "FAILED: ") + name + " " + detail);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], schema = args[1];
        long expected = Long.parseLong(args[2]);
        try (Connection c = DriverManager.getConnection(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("SET search_path = " + schema);
                long n = 0;
                try (ResultSet rs = s.executeQuery("SELECT * FROM task_runs")) { while (rs.next()) n++; }
                check("open without WHERE", n == expected, "(" + n + " rows)");
                try (ResultSet rs = s.executeQuery("SELECT * FROM task_runs LIMIT 0")) {
                    ResultSetMetaData md = rs.getMetaData();
                    check("LIMIT 0 metadata", !rs.next() && md.getColumnCount() > 5 && md.getColumnName(1).equals("clean_room_name"), "(" + md.getColumnCount() + " columns)");
                }
            }
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getTables(null, schema, "%", new String[] {"FOREIGN TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            check("getTables lists it as FOREIGN TABLE", tables.contains("task_runs"), tables.toString());
            try (PreparedStatement p = c.prepareStatement("SELECT count(*) FROM task_runs WHERE run_duration > ?")) {
                boolean ok = true;
                for (int i = 0; i < 25; i++) {
                    p.setLong(1, i % 3);
                    try (ResultSet rs = p.executeQuery()) { ok &= rs.next() && rs.getLong(1) > 0; }
                }
                check("prepared statement x25 (server-prepared after 5)", ok, "");
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.setFetchSize(10);
                long n = 0;
                try (ResultSet rs = s.executeQuery("SELECT clean_room_name, notebook_name FROM task_runs")) { while (rs.next()) n++; }
                check("fetch size 10", n == expected, "(" + n + " rows)");
            }
            c.commit();
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                s.execute("DROP MATERIALIZED VIEW IF EXISTS runs_mv_jdbc");
                s.execute("CREATE MATERIALIZED VIEW runs_mv_jdbc AS SELECT row_number() OVER () AS n, clean_room_name FROM task_runs");
                s.execute("CREATE UNIQUE INDEX ON runs_mv_jdbc (n)");
                s.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY runs_mv_jdbc");
                try (ResultSet rs = s.executeQuery("SELECT count(*) FROM runs_mv_jdbc")) {
                    rs.next();
                    check("materialized view and REFRESH CONCURRENTLY", rs.getLong(1) == expected, "(" + rs.getLong(1) + " rows)");
                }
            }
        }
        System.out.println("pgjdbc: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
