-- databricks_fdw 0.1.0 -> 0.2.0
--
-- No catalog object changes: 0.2.0's new options (max_listings; tighter checks of credentials,
-- max_response_bytes and path) are enforced by the same validator function, and its other
-- changes live in the shared library. The file exists so that ALTER EXTENSION databricks_fdw
-- UPDATE reaches 0.2.0; scripts/upgrade-test.sh checks that the result equals a new
-- installation, so a change to the generated SQL without a matching upgrade step fails there.
\echo Use "ALTER EXTENSION databricks_fdw UPDATE TO '0.2.0'" to load this file. \quit
