"""The Open Inference Protocol (V2) with Triton's HTTP client.

    mlfast serve                        # or: make serve
    python apps/clients/triton_client.py [127.0.0.1:8000] [MODEL_NAME]

The model name is the model file's stem (iris_logreg for the demo model) or
mlfast serve's --name.  Outputs: predict (labels) and predict_proba.
"""

import sys

import numpy as np
import tritonclient.http as httpclient

URL = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8000"
MODEL = sys.argv[2] if len(sys.argv) > 2 else "iris_logreg"

client = httpclient.InferenceServerClient(url=URL)
print(client.get_model_metadata(MODEL))

X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
inputs = [httpclient.InferInput("input", list(X.shape), "FP32")]
inputs[0].set_data_from_numpy(X)  # binary tensor data
outputs = [
    httpclient.InferRequestedOutput("predict"),
    httpclient.InferRequestedOutput("predict_proba"),
]

result = client.infer(MODEL, inputs, outputs=outputs)
print(result.as_numpy("predict"))  # [0 2]
print(result.as_numpy("predict_proba"))
