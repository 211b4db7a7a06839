-- databricks_fdw 0.3.0 -> 0.4.0
--
-- Everything of 0.4.0 that is not listed below lives in the shared library and the same
-- validator. scripts/upgrade-test.sh checks that the result equals a new installation.
\echo Use "ALTER EXTENSION databricks_fdw UPDATE TO '0.4.0'" to load this file. \quit
