"""KaixuPush: deploys to Netlify through the gateway."""
