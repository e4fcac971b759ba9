"""`MlcicdModel`: raw rows in, mlcicd's predictions out, for any MLflow user (pyfunc.load_model, mlflow models serve)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc

BOOSTER = "booster"  # artifacts/<BOOSTER>.txt: LightGBM's own text format
FEATURE_STATE = "feature_state"  # the fitted FeatureState, as JSON


class MlcicdModel(mlflow.pyfunc.PythonModel):
    """A LightGBM booster behind the feature path it was trained through (mlcicd.core.train.predict)."""

    def load_context(self, context) -> None:
        import lightgbm

        from mlcicd.core.features import FeatureState

        self.booster = lightgbm.Booster(model_file=context.artifacts[BOOSTER])
        self.features = FeatureState.from_dict(json.loads(Path(context.artifacts[FEATURE_STATE]).read_text()))

    def predict(self, context, model_input, params=None):
        from mlcicd.core.train import predict

        return predict(self.booster, self.features, model_input)


# the contract's dtypes as MLflow column types; a nullable int arrives as float (pandas has no NaN in int64)
MLFLOW_TYPES = {"int": "long", "float": "double", "str": "string", "bool": "boolean", "datetime": "datetime"}


def raw_input_example(frame, contract, target: str, rows: int = 5):
    """A few raw rows as a caller sends them: the contract's columns (not the target), categories as text."""
    import pandas as pd

    columns = [c for c in contract.columns if c != target and c in frame.columns]
    example = frame[columns].head(rows).copy()
    for column in columns:
        rule = contract.columns[column]
        if rule.dtype == "str" or isinstance(example[column].dtype, pd.CategoricalDtype):
            example[column] = example[column].astype(object).where(example[column].notna(), None)
        elif rule.dtype == "int" and rule.nullable:
            example[column] = example[column].astype("float64")
        elif rule.dtype == "datetime" and getattr(example[column].dtype, "tz", None) is not None:
            example[column] = example[column].dt.tz_convert("UTC").dt.tz_localize(None)  # MLflow's datetime is zone-naive
    return example


def model_signature(contract, target: str, reads: list[str], predictions):
    """Inputs from the contract's raw columns (the target excluded; required where the model reads the column),
    outputs as the model returns them."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([
        ColSpec("double" if rule.dtype == "int" and rule.nullable else MLFLOW_TYPES[rule.dtype], name, required=name in reads)
        for name, rule in contract.columns.items() if name != target
    ])
    return ModelSignature(inputs=inputs, outputs=infer_signature(model_output=predictions).outputs)
