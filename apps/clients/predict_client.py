"""POST /predict with requests, as the lesson tests its Flask and FastAPI apps.

mlfast serve                        # or: make serve
python apps/clients/predict_client.py [http://127.0.0.1:8000]
"""

import sys

import requests

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"

response = requests.post(f"{URL}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
print(response.json())  # {'prediction': 0}

response = requests.post(
    f"{URL}/predict", json={"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
)
print(response.json())  # {'predictions': [0, 2]}
