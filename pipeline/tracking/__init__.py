"""All of MLflow: the store, the training's run, evaluate's run and the registry, the raw-text pyfunc.
Imports core, data and model; stages and predict import it, inside functions (MLflow loads slowly)."""
