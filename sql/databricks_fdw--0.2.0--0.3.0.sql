-- databricks_fdw 0.2.0 -> 0.3.0
--
-- New: StackQL's EXEC methods of the cleanrooms service as SQL functions. Everything else of
-- 0.3.0 (page_size and page_token columns, streamed pages, the new options' checks) lives in
-- the shared library and the same validator. scripts/upgrade-test.sh checks that the result
-- equals a new installation.
\echo Use "ALTER EXTENSION databricks_fdw UPDATE TO '0.3.0'" to load this file. \quit

CREATE FUNCTION "databricks_fdw_create_output_catalog"(
	"server" TEXT,
	"clean_room_name" TEXT,
	"catalog_name" TEXT
) RETURNS jsonb
LANGUAGE c
AS 'MODULE_PATHNAME', 'databricks_fdw_create_output_catalog_wrapper';

CREATE FUNCTION "databricks_fdw_review_asset"(
	"server" TEXT,
	"clean_room_name" TEXT,
	"asset_type" TEXT,
	"name" TEXT,
	"etag" TEXT,
	"review_state" TEXT,
	"comment" TEXT DEFAULT NULL
) RETURNS jsonb
LANGUAGE c
AS 'MODULE_PATHNAME', 'databricks_fdw_review_asset_wrapper';
