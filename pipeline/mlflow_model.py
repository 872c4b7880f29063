"""The MLflow model: a pyfunc that takes raw review text (MLflow "models from code").

The evaluate stage logs this file with models/model.pt as the artifact ``model`` and the
``pipeline`` package as code, so the model loads anywhere with ``mlflow.pyfunc.load_model`` and
serves with ``mlflow models serve``. Input: a DataFrame with a ``text`` column of review
strings. Output: ``probability`` (of positive), ``label`` (1 positive, 0 negative) and
``sentiment`` ("positive"/"negative"), with the threshold from the model config.
"""

import mlflow
import pandas as pd

from pipeline.predict import TextClassifier


class SentimentModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.classifier = TextClassifier.from_file(context.artifacts["model"])
        self.threshold = float((context.model_config or {}).get("threshold", 0.5))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            texts = model_input["text"] if "text" in model_input else model_input.iloc[:, 0]
        else:
            texts = pd.Series(model_input)
        probs = self.classifier.predict_proba(texts.fillna("").astype(str).tolist())
        labels = (probs >= self.threshold).astype("int64")
        return pd.DataFrame(
            {
                "probability": probs.astype("float64"),
                "label": labels,
                "sentiment": ["positive" if label else "negative" for label in labels],
            }
        )


mlflow.models.set_model(SentimentModel())
