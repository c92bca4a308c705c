# The lesson's Flask app (Lesson 8, section 1.1), copied as written.  The one
# change: the model path comes from the MODEL_PATH environment variable
# (default 'model.pkl', as in the lesson), so the benchmark can point it at
# each model file.  The benchmark runs it under gunicorn, never app.run().
import os

import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)

# Load the trained model
model = joblib.load(os.environ.get("MODEL_PATH", "model.pkl"))


@app.route("/predict", methods=["POST"])
def predict():
    data = request.get_json(force=True)
    features = np.array(data["features"]).reshape(1, -1)
    prediction = model.predict(features)
    return jsonify({"prediction": int(prediction[0])})


if __name__ == "__main__":
    app.run(debug=True)
