# Sourced by every platform-kit step that talks to MLflow: `. .github/kit-env.sh`.
#
# The workflows hand MLflow's settings to those steps as KIT_MLFLOW_* (from the repository
# variables MLFLOW_TRACKING_URI and MLFLOW_TRACKING_USERNAME and the secrets
# MLFLOW_TRACKING_PASSWORD and MLFLOW_TRACKING_TOKEN). Each is exported under MLflow's own name
# only when it is set, so one left unset keeps the runner's own value (its .env) instead of
# replacing it with "". The KIT_ copies are removed either way.
for kit_name in MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD \
  MLFLOW_TRACKING_TOKEN; do
  kit_given="KIT_$kit_name"
  if [ -n "${!kit_given:-}" ]; then
    export "$kit_name=${!kit_given}"
  fi
  unset "$kit_given"
done
unset kit_name kit_given
