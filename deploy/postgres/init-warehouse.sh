#!/bin/bash
# Runs once, when the PostgreSQL volume of docker-compose.yaml is first initialised: the
# warehouse gets its own role and database beside Airflow's metadata database. The password
# comes from the container's environment (WAREHOUSE_PASSWORD), never from this file.
set -euo pipefail
psql -v ON_ERROR_STOP=1 -v pw="${WAREHOUSE_PASSWORD:?WAREHOUSE_PASSWORD is not set}" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'EOSQL'
create role warehouse login password :'pw';
create database warehouse owner warehouse;
EOSQL
