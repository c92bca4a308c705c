"""The lesson's SageMaker client, run against a local mlfast server.

    mlfast serve                        # or: make serve
    python apps/clients/sagemaker_client.py [http://127.0.0.1:8000]

The lesson's code is unchanged but for endpoint_url (and dummy credentials
if you have none: the local server does not check signatures).  Without
endpoint_url the same code calls a real SageMaker endpoint.
"""

import json
import os
import sys

import boto3

ENDPOINT_URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

# Create a SageMaker runtime client
client = boto3.client("sagemaker-runtime", region_name="us-west-2", endpoint_url=ENDPOINT_URL)

# Define the endpoint name and input data
endpoint_name = "your-endpoint-name"
payload = json.dumps({"features": [1, 2, 3, 4]})

# Invoke the endpoint
response = client.invoke_endpoint(
    EndpointName=endpoint_name, ContentType="application/json", Body=payload
)

# Get the result
result = json.loads(response["Body"].read().decode())
print(result)
