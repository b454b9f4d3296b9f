# The project image: the official Airflow image plus the pinned requirements and the project.
#
# Used by docker-compose.yaml (every Airflow service, the init job and the feed server) and by
# the Helm chart (deploy/helm/values.yaml: images.airflow). The project lives where the
# official layout expects it (/opt/airflow/{dags,plugins,include,sql,expectations}); compose
# mounts the same folders over it for development. `include/` is on PYTHONPATH, so the
# package's repository root resolves to /opt/airflow and finds sql/ and expectations/.
#
#   docker build -t consumption-monitor:latest .
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# requirements.txt is fully pinned (apache-airflow==3.3.2 included), so the install cannot
# move Airflow or its providers away from the versions tested here.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
# The runtime package only: the dev tools (include/cm_devtools: sample feed server, demo
# driver, native topology) stay out of the image; docker-compose.yaml mounts include/ for
# its sample feed server.
COPY --chown=airflow:0 include/consumption_monitor/ /opt/airflow/include/consumption_monitor/
COPY --chown=airflow:0 sql/ /opt/airflow/sql/
COPY --chown=airflow:0 expectations/ /opt/airflow/expectations/

ENV PYTHONPATH=/opt/airflow/include \
    CM_DATA_DIR=/opt/airflow/data \
    GX_ANALYTICS_ENABLED=false
