"""The MLflow model: a pyfunc that takes raw review text (MLflow "models from code").

The evaluate stage logs this file with models/model.pt as the artifact ``model`` and the
``pipeline`` package as code, so the model loads anywhere with ``mlflow.pyfunc.load_model`` and
serves with ``mlflow models serve``. Input: a DataFrame with a ``text`` column of review
strings. Output: ``probability`` (of positive), ``label`` (1 positive, 0 negative) and
``sentiment`` ("positive"/"negative"), at the threshold stored in the model file
(pipeline.inference.Predictor, as ``python -m pipeline.predict``).
"""

import mlflow
import pandas as pd

from pipeline.inference import Predictor


class SentimentModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.predictor = Predictor.from_path(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            texts = model_input["text"] if "text" in model_input else model_input.iloc[:, 0]
        else:
            texts = pd.Series(model_input)
        return pd.DataFrame(self.predictor.predict(texts.fillna("").astype(str).tolist()))


mlflow.models.set_model(SentimentModel())
