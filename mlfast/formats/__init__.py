"""Model containers other than a bare pickle: skops zips and MLflow model
directories.  Each reads its container with bounds checked first and hands
the pickle VM (or the value tree it makes) what a joblib file would give, so
the builders serve every container unchanged."""
