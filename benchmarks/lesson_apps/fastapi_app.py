# The lesson's FastAPI app (Lesson 8, section 1.2), copied as written.  The one
# change: the model path comes from the MODEL_PATH environment variable
# (default 'model.pkl', as in the lesson), so the benchmark can point it at
# each model file.  The benchmark runs it under uvicorn.
import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()

# Load the trained model
model = joblib.load(os.environ.get("MODEL_PATH", "model.pkl"))


class PredictionRequest(BaseModel):
    features: list


@app.post("/predict")
def predict(request: PredictionRequest):
    features = np.array(request.features).reshape(1, -1)
    prediction = model.predict(features)
    return {"prediction": int(prediction[0])}
