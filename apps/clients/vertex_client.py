"""The lesson's Vertex AI client, run against a local mlfast server.

    mlfast serve                        # or: make serve
    python apps/clients/vertex_client.py [http://127.0.0.1:8000]

Two changes to the lesson's code:

1. aiplatform.init points at the local server, over REST, with anonymous
   credentials (without those three arguments the same code calls Vertex AI).
2. endpoint.predict takes a *list* of instances.  The lesson passes the dict
   itself, and the SDK then sends only the dict's keys, {"instances":
   ["features"]} - with the real Vertex AI too.  Wrapping the payload in a
   list sends it whole; mlfast reads {"features": [...]} instances.
"""

import sys

from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform

API_ENDPOINT = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"

# Initialize the AI Platform client
aiplatform.init(
    project="your-project-id",
    location="us-central1",
    api_endpoint=API_ENDPOINT,
    api_transport="rest",
    credentials=AnonymousCredentials(),
)

# Define the endpoint and input data
endpoint = aiplatform.Endpoint("your-endpoint-id")
payload = {"features": [1, 2, 3, 4]}

# Make a prediction
response = endpoint.predict([payload])
print(response)
