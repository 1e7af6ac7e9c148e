"""Planted secrets: one text per shape a credential takes in agent runs, with the value that must
never be seen again once the text has gone through redaction.

Every value is fake but has the real shape (prefix, length, alphabet). `PLANTED` is used by the
unit test of `redact` and by the end-to-end test that plants every text in every place a run
holds text and looks for the values in what the model server received, the lake's lessons, the
skill folder and the report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Planted:
    shape: str
    text: str  # how the secret appears in a run
    value: str  # what must not appear anywhere after redaction


PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SuFv4ZqYcXf9uQbD1nWkLpE8sHgJ0aRt6yVcN2oMx"

PLANTED = [
    Planted("openai-key", "use the key sk-proj-Q7vT2mX9pL4kR8sW1nB6cY3dF5gH0jZa now",
            "sk-proj-Q7vT2mX9pL4kR8sW1nB6cY3dF5gH0jZa"),
    Planted("anthropic-key", "ANTHROPIC key sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0GfEd",
            "sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0GfEd"),
    Planted("server-echo", "Error code: 401 - Incorrect API key provided: sk-Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7. "
            "You can find your API key at the dashboard.", "sk-Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7"),
    Planted("aws-key-id", "aws configure set aws_access_key_id AKIAZ7Q4TQ3X9K2WEXMP",
            "AKIAZ7Q4TQ3X9K2WEXMP"),
    Planted("aws-secret-env", "AWS_SECRET_ACCESS_KEY=Zm9vYmFyQmF6cXV4MTIzNDU2Nzg5MGFiY2Rl",
            "Zm9vYmFyQmF6cXV4MTIzNDU2Nzg5MGFiY2Rl"),
    Planted("aws-secret-json", '{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENGbPxRfiCYzQ8s7TkLm2"}',
            "wJalrXUtnFEMIK7MDENGbPxRfiCYzQ8s7TkLm2"),
    Planted("json-db-password", '{"host": "db", "DB_PASSWORD": "Tr0ub4dor-and-3"}',
            "Tr0ub4dor-and-3"),
    Planted("env-pgpassword", "PGPASSWORD=pgS3cretSeventy7 psql -h db -U app",
            "pgS3cretSeventy7"),
    Planted("env-mysql-pwd", "export MYSQL_PWD='mysqlPwdValue88'", "mysqlPwdValue88"),
    Planted("yaml-password", "database:\n  user: app\n  password: correcthorsebatterystaple\n",
            "correcthorsebatterystaple"),
    Planted("yaml-api-key", "service:\n  api_key: qwertyuiopasdfghjklzxcvb\n",
            "qwertyuiopasdfghjklzxcvb"),
    Planted("ini-password", "[client]\nuser = root\npassword = iniPassw0rdValue\n",
            "iniPassw0rdValue"),
    Planted("cli-password-flag", "mysql -u root --password S3cr3tCliFlag! shop",
            "S3cr3tCliFlag!"),
    Planted("prose-password", "Ann said her password is sunflower1987 and asked to log in",
            "sunflower1987"),
    Planted("prose-password-quoted", 'The admin password was "velvet lagoon" until Monday',
            "velvet lagoon"),
    Planted("prose-passphrase", "log in with the passphrase: 'open sesame please'",
            "open sesame please"),
    Planted("gitlab-token", "git push https://oauth2@gitlab.example.com with glpat-xY3zAb9CdEf1GhIj2KlM",
            "glpat-xY3zAb9CdEf1GhIj2KlM"),
    Planted("github-token", "GITHUB_TOKEN=ghp_R4nd0mT0k3nV4lu3F0rT3st1ngAbCdEf12 gh pr list",
            "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngAbCdEf12"),
    Planted("github-pat", "token github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV12",
            "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV12"),
    Planted("slack-token", "SLACK bot xoxb-2048-4096-Zq9Xw8Cv7Bn6", "xoxb-2048-4096-Zq9Xw8Cv7Bn6"),
    Planted("slack-webhook",
            "POST https://hooks.slack.com/services/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",
            "q1w2e3r4t5y6u7i8o9p0AsDf"),
    Planted("stripe-key", "charge with sk_live_51HqLyjWDarjtT1zdp7dcXYZ", "sk_live_51HqLyjWDarjtT1zdp7dcXYZ"),
    Planted("stripe-webhook", "STRIPE webhook signing whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    Planted("google-key", "maps AIzaSyD3xAmPlEkEy-0123456789abcdefghijk call",
            "AIzaSyD3xAmPlEkEy-0123456789abcdefghijk"),
    Planted("google-oauth", "access ya29.a0AfH6SMBx3kLmNoPqRsTuVwXyZ0123456789-abcdef expired",
            "ya29.a0AfH6SMBx3kLmNoPqRsTuVwXyZ0123456789-abcdef"),
    Planted("google-client-secret", '{"client_id": "12.apps", "client_secret": "GOCSPX-4bC8dE2fG6hJ0kL"}',
            "GOCSPX-4bC8dE2fG6hJ0kL"),
    Planted("jwt", "session eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYW5uIn0.Q1x2Y3z4A5b6C7d8E9f0G1h2I3j4",
            "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYW5uIn0.Q1x2Y3z4A5b6C7d8E9f0G1h2I3j4"),
    Planted("private-key",
            f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----", PEM_BODY),
    Planted("url-credentials", "DATABASE_URL=postgres://app:PgUrlPass9x@db:5432/shop",
            "PgUrlPass9x"),
    Planted("url-password-only", "redis://:RedisOnlyPass42@cache:6379/0", "RedisOnlyPass42"),
    Planted("bearer-header", "curl -H 'Authorization: Bearer 9f3kQ2mZ7xLp4vB8nR1tY6wE0uI5oA' api",
            "9f3kQ2mZ7xLp4vB8nR1tY6wE0uI5oA"),
    Planted("basic-header", "Authorization: Basic YWRtaW46c3VwZXJzZWNyZXRwYXNz",
            "YWRtaW46c3VwZXJzZWNyZXRwYXNz"),
    Planted("hf-token", "HF hub hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    Planted("npm-token", "//registry.npmjs.org/:_authToken=npm_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA",
            "npm_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA"),
    Planted("pypi-token", "twine upload -p pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcA",
            "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcA"),
    Planted("azure-connection",
            "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=Qm9ndXNBenVyZUtleVZhbHVlMTIzNDU2Nzg5MA==;",
            "Qm9ndXNBenVyZUtleVZhbHVlMTIzNDU2Nzg5MA=="),
    Planted("sendgrid-key", "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",
            "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"),
    Planted("docker-auth", '{"auths": {"registry.example.com": {"auth": "ZG9ja2VyOmRvY2tlclBhc3M5OQ=="}}}',
            "ZG9ja2VyOmRvY2tlclBhc3M5OQ=="),
    Planted("kwargs-password", "connect(host='db', password='pyKw4rgPassWord')", "pyKw4rgPassWord"),
    Planted("xml-password", "<user>ann</user><password>xmlPass123Value</password>",
            "xmlPass123Value"),
    Planted("email", "write to mia.li3818@example.com today", "mia.li3818@example.com"),
]  # fmt: skip
