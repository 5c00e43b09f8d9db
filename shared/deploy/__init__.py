"""Deploying the gateway to AWS Lambda + Netlify: ``python -m shared.deploy <command>``.

- ``template``: write ``template.yaml`` (AWS SAM) from ``functions/``; never edit it by hand.
- ``build``: the Lambda artifact (function code + one dependency layer) in ``build/lambda/``.
- ``site``: the admin site for Netlify in ``build/site/`` (its build command).
- ``secret``: a skeleton of the Secrets Manager secret the template reads, strong values made.

``release`` is the one piece that runs in AWS: the CloudFormation custom resource that applies
migrations once per release, before the new functions serve a request.
"""
