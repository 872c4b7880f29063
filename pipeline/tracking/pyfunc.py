"""The MLflow model: a pyfunc that takes raw review text (MLflow "models from code").

The evaluate stage logs this file with models/model.pt as the artifact ``model`` and the
``pipeline`` package as code, so the model loads anywhere with ``mlflow.pyfunc.load_model`` and
serves with ``mlflow models serve``. Input: a DataFrame with a ``text`` column of review
strings. Output: ``probability`` (of positive), ``label`` (1 positive, 0 negative) and
``sentiment`` ("positive"/"negative"), at the threshold stored in the model file; for more than
two classes ``probability`` is the chosen class's, ``label`` its id, ``sentiment`` its name and
``probabilities`` each class's, in the model's class order
(pipeline.model.inference.Predictor, as ``python -m pipeline.predict``). A record whose text is not a
non-empty string is refused (HTTP 400 from ``mlflow models serve``, naming the record); a review
with no word the model knows gets no probability or label and the sentiment "no known words".
"""

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from pipeline.model.inference import Predictor, check_texts


class SentimentModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.predictor = Predictor.from_path(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            if len(model_input) and "text" not in model_input:
                message = f"the records have no 'text' field (they have {', '.join(map(str, model_input.columns))})"
                raise MlflowException(message, error_code=INVALID_PARAMETER_VALUE)
            values = model_input["text"].tolist() if "text" in model_input else []
        else:
            values = pd.Series(model_input).tolist()
        try:
            texts = check_texts(values)
        except ValueError as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
        result = self.predictor.predict(texts)
        if None in result["label"]:  # kept as None (JSON null), not NaN
            return pd.DataFrame({name: pd.Series(column, dtype=object) for name, column in result.items()})
        return pd.DataFrame(result)


mlflow.models.set_model(SentimentModel())
