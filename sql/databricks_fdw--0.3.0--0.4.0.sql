-- databricks_fdw 0.3.0 -> 0.4.0
--
-- Everything of 0.4.0 that is not listed below lives in the shared library and the same
-- validator. scripts/upgrade-test.sh checks that the result equals a new installation.
\echo Use "ALTER EXTENSION databricks_fdw UPDATE TO '0.4.0'" to load this file. \quit

-- The cluster's figures (kept when the library is preloaded), for pg_monitor members.
CREATE FUNCTION "databricks_fdw_cluster_stats"() RETURNS TABLE (
	"server" TEXT,
	"resource" TEXT,
	"scans" bigint,
	"requests" bigint,
	"pages" bigint,
	"rows" bigint,
	"retries" bigint,
	"errors" bigint,
	"bytes_received" bigint,
	"throttled" bigint,
	"cache_hits" bigint,
	"cache_misses" bigint,
	"backends_waiting" INT
)
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'databricks_fdw_cluster_stats_wrapper';

CREATE FUNCTION "databricks_fdw_cluster_stats_reset"() RETURNS void
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'databricks_fdw_cluster_stats_reset_wrapper';

COMMENT ON FUNCTION databricks_fdw_cluster_stats() IS 'Requests, pages, rows, retries, errors, bytes, 429s and cache hits of every backend''s scans since start, per server and resource (needs shared_preload_libraries)';
REVOKE ALL ON FUNCTION databricks_fdw_cluster_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION databricks_fdw_cluster_stats() TO pg_monitor;
REVOKE ALL ON FUNCTION databricks_fdw_cluster_stats_reset() FROM PUBLIC;
