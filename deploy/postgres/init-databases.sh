#!/bin/sh
# Runs once, when Postgres starts on an empty data volume (docker-entrypoint-initdb.d): a login
# role and a database of its own each for the CRM and for n8n. The CRM's role owns its database,
# which lets its migrations turn JIT off there (ALTER DATABASE … SET jit = off, see README.md).
# Changing these variables later changes nothing here: alter the roles with psql instead.
set -eu

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v crm_db="$CRM_DB_NAME" -v crm_user="$CRM_DB_USER" -v crm_password="$CRM_DB_PASSWORD" \
	-v n8n_db="$N8N_DB_NAME" -v n8n_user="$N8N_DB_USER" -v n8n_password="$N8N_DB_PASSWORD" <<'SQL'
CREATE ROLE :"crm_user" LOGIN PASSWORD :'crm_password';
CREATE DATABASE :"crm_db" OWNER :"crm_user";
REVOKE ALL ON DATABASE :"crm_db" FROM PUBLIC;
CREATE ROLE :"n8n_user" LOGIN PASSWORD :'n8n_password';
CREATE DATABASE :"n8n_db" OWNER :"n8n_user";
REVOKE ALL ON DATABASE :"n8n_db" FROM PUBLIC;
SQL
