"""The test's own view of a moto S3 server, through boto3 (installed with
moto[server] in the test venv): sets the server up with an IAM user whose
keys are the only ones it accepts, and reads or rewrites a bucket's objects
behind rollway's back. Usage: s3.py COMMAND ENDPOINT [ARGS...]."""

import hashlib
import json
import sys
import urllib.request

import boto3


def client(service, endpoint, key, secret):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def setup(endpoint, bucket):
    """Makes a user with full S3 rights and the bucket, then has moto check
    every request's signature from here on; prints the user's keys."""
    iam = client("iam", endpoint, "setup", "setup")
    iam.create_user(UserName="rollway")
    key = iam.create_access_key(UserName="rollway")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="rollway", PolicyName="s3", PolicyDocument=json.dumps(policy))
    client("s3", endpoint, key["AccessKeyId"], key["SecretAccessKey"]).create_bucket(Bucket=bucket)
    request = urllib.request.Request(
        endpoint + "/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).read()
    print(key["AccessKeyId"], key["SecretAccessKey"])


def main():
    command, endpoint = sys.argv[1], sys.argv[2]
    if command == "setup":
        setup(endpoint, sys.argv[3])
        return
    key, secret, bucket = sys.argv[3], sys.argv[4], sys.argv[5]
    s3 = client("s3", endpoint, key, secret)
    if command == "list":
        # Every object (key, size) and every incomplete multipart upload.
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            print("object", o["Key"], o["Size"])
        for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            print("upload", u["Key"])
    elif command == "show":
        # An object's size, SHA-256, ETag, and whether it holds a clear dump.
        got = s3.get_object(Bucket=bucket, Key=sys.argv[6])
        body = got["Body"].read()
        clear = b"PGDMP" in body
        print(len(body), hashlib.sha256(body).hexdigest(), got["ETag"].strip('"'), clear)
    elif command == "flip":
        # One byte in the middle of the object flipped, stored again.
        body = bytearray(s3.get_object(Bucket=bucket, Key=sys.argv[6])["Body"].read())
        body[len(body) // 2] ^= 0x01
        s3.put_object(Bucket=bucket, Key=sys.argv[6], Body=bytes(body))
    else:
        sys.exit(f"unknown command {command}")


main()
