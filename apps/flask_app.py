"""The lesson's Flask app, with joblib.load swapped for mlfast.load.

    flask --app flask_app.py run               # http://127.0.0.1:5000
    gunicorn flask_app:app                     # production: a real WSGI server
    gunicorn -w 4 flask_app:app                # four workers; /metrics counts them all
    curl -X POST http://127.0.0.1:5000/predict -H 'Content-Type: application/json' \\
         -d '{"features": [5.1, 3.5, 1.4, 0.2]}'
    # -> {"prediction": 0}

The model: model.pkl in the working directory (what the lesson's
joblib.dump(model, 'model.pkl') wrote), or the file named by MLFAST_MODEL;
MLFAST_MODEL=demo serves mlfast's demo model (the lesson's iris
LogisticRegression).  Without a model the app does not start: it never
answers with a model you did not train.

Besides the lesson's POST /predict, the app answers SageMaker (/ping,
/invocations), Vertex AI, KServe V1 and the Open Inference Protocol (V2):
they all come from one serving core, mlfast.serving.  It is a plain Flask
app: add your own routes with @app.route as usual.
"""

import os

import mlfast
from mlfast.serving import create_app


def model_path():
    path = os.environ.get("MLFAST_MODEL") or "model.pkl"
    if path == "demo":
        return mlfast.demo_model_path()
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"model file {os.path.abspath(path)} does not exist: save your model there with "
            "joblib.dump(model, 'model.pkl'), point MLFAST_MODEL at a model file, or set "
            "MLFAST_MODEL=demo to serve mlfast's demo model"
        )
    return path


# Load the trained model: the same file joblib.dump wrote, read in C without
# running any code from it
model = mlfast.load(model_path())

# POST /predict: {"features": [5.1, 3.5, 1.4, 0.2]} -> {"prediction": 0}
app = create_app(model, framework="flask")

if __name__ == "__main__":
    # Not app.run(debug=True) as in the lesson: the Werkzeug debugger runs
    # Python sent by anyone who can reach the port.
    app.run()
