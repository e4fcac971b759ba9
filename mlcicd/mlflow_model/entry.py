"""MLflow's models-from-code file for every mlcicd version: MLflow runs it when it loads the model.

mlcicd never imports it (it calls `set_model`, which only makes sense inside MLflow's loader).
"""

import mlflow.models

from mlcicd.mlflow_model.pyfunc_model import MlcicdModel

mlflow.models.set_model(MlcicdModel())
