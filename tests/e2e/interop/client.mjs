// A real third-party OpenID Connect client (panva's `openid-client` v6) against authserver.
//
// Driven by tests/e2e/test_interop.py as a subprocess, one JSON object per line:
//   1. discovery (OpenID Connect Discovery 1.0, `{issuer}/.well-known/openid-configuration`),
//      then prints {"authorization_url": ...}: PKCE S256 + state + nonce + SMART `aud`;
//   2. reads ONE line on stdin: the redirect the test received (code, state, iss);
//   3. authorization code grant (the library checks RFC 9207 `iss`, state, the id_token
//      signature against the server's JWKS, iss/aud/exp/nonce/at_hash), a refresh_token
//      grant, then UserInfo with the id_token's `sub` as the expected subject, then the
//      first (rotated) refresh token once more, which must be refused;
//   4. prints {"ok": true, ...} — or {"ok": false, "error": ...} when the library refused.
//
// Configuration (environment):
//   INTEROP_ISSUER, INTEROP_CLIENT_ID, INTEROP_REDIRECT_URI, INTEROP_SCOPE, INTEROP_AUD
//   INTEROP_AUTH = none | client_secret_basic | private_key_jwt      (default none)
//   INTEROP_CLIENT_SECRET                      (client_secret_basic)
//   INTEROP_PRIVATE_JWK (JSON, with kid+alg)   (private_key_jwt)
//   INTEROP_ASSERTION = smart | typ | library  (private_key_jwt; default smart)
//     smart:   header typ "JWT" and aud = the token endpoint URL, as SMART App Launch 2.2
//              client-confidential-asymmetric asks (set with the library's modifyAssertion);
//     typ:     header typ "JWT", aud left as the library sets it (the issuer identifier);
//     library: the assertion exactly as openid-client builds it (no typ, aud = issuer).
//
// Specs: https://openid.net/specs/openid-connect-core-1_0.html,
// https://www.rfc-editor.org/rfc/rfc9207, https://www.rfc-editor.org/rfc/rfc7636,
// https://hl7.org/fhir/smart-app-launch/app-launch.html
import * as client from 'openid-client'
import { createInterface } from 'node:readline'

const env = process.env

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function describe(err) {
  let body
  try {
    body = err?.response && !err.response.bodyUsed ? await err.response.clone().json() : undefined
  } catch {
    body = undefined
  }
  return {
    name: err?.name,
    message: err?.message,
    code: err?.code,
    error: err?.error,
    error_description: err?.error_description,
    status: err?.status,
    cause: err?.cause?.message ?? (typeof err?.cause === 'object' ? undefined : err?.cause),
    // WWWAuthenticateChallengeError: the parsed challenges; ResponseBodyError: the body.
    challenges: Array.isArray(err?.cause) ? err.cause : undefined,
    body: body ?? (err?.cause && !Array.isArray(err.cause) && typeof err.cause === 'object'
      ? err.cause : undefined),
  }
}

async function readLine() {
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    rl.close()
    return line.trim()
  }
  throw new Error('stdin closed before the callback URL arrived')
}

function decodePayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())
}

async function clientAuth(auth) {
  if (auth === 'none') return client.None()
  if (auth === 'client_secret_basic') return client.ClientSecretBasic(env.INTEROP_CLIENT_SECRET)
  if (auth === 'private_key_jwt') {
    const jwk = JSON.parse(env.INTEROP_PRIVATE_JWK)
    const algorithm = jwk.kty === 'EC'
      ? { name: 'ECDSA', namedCurve: jwk.crv }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-' + jwk.alg.slice(2) }
    const { kid, alg, use, key_ops, ...material } = jwk
    const key = await crypto.subtle.importKey('jwk', material, algorithm, false, ['sign'])
    const mode = env.INTEROP_ASSERTION || 'smart'
    if (mode === 'library') return client.PrivateKeyJwt({ key, kid })
    return client.PrivateKeyJwt({ key, kid }, {
      [client.modifyAssertion](header, payload) {
        header.typ = 'JWT'
        if (mode === 'smart') payload.aud = tokenEndpoint
      },
    })
  }
  throw new Error(`unknown INTEROP_AUTH ${auth}`)
}

let tokenEndpoint = ''
let stage = 'discovery'

async function main() {
  const auth = env.INTEROP_AUTH || 'none'
  const config = await client.discovery(
    new URL(env.INTEROP_ISSUER),
    env.INTEROP_CLIENT_ID,
    undefined,
    await clientAuth(auth),
    // The test server is plain http on 127.0.0.1: the library's documented opt-out.
    { execute: [client.allowInsecureRequests], timeout: 10 },
  )
  const meta = config.serverMetadata()
  tokenEndpoint = meta.token_endpoint

  stage = 'authorization_request'
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: env.INTEROP_REDIRECT_URI,
    scope: env.INTEROP_SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    aud: env.INTEROP_AUD,
  })
  emit({ authorization_url: url.href, issuer: meta.issuer, token_endpoint: tokenEndpoint,
         iss_parameter_supported: meta.authorization_response_iss_parameter_supported ?? null })

  const callback = await readLine()

  stage = 'authorization_code_grant'
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()

  stage = 'refresh_token_grant'
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const refreshedClaims = refreshed.claims() ?? null

  stage = 'userinfo'
  const userinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)

  // The first refresh token again: it was rotated, so the server must refuse it.
  stage = 'refresh_token_replay'
  let replay = null
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token)
  } catch (err) {
    replay = await describe(err)
  }

  emit({
    ok: true,
    id_token_claims: claims,
    token_response: {
      token_type: tokens.token_type,
      scope: tokens.scope,
      expires_in: tokens.expiresIn(),
      patient: tokens.patient ?? null,
      has_refresh_token: typeof tokens.refresh_token === 'string',
    },
    access_token: tokens.access_token,
    access_token_claims: decodePayload(tokens.access_token),
    refreshed: {
      access_token: refreshed.access_token,
      access_token_claims: decodePayload(refreshed.access_token),
      rotated_refresh_token: typeof refreshed.refresh_token === 'string'
        && refreshed.refresh_token !== tokens.refresh_token,
      scope: refreshed.scope,
      patient: refreshed.patient ?? null,
      id_token_claims: refreshedClaims,
    },
    userinfo,
    replay_error: replay,
  })
}

main().catch(async (err) => {
  emit({ ok: false, stage, error: await describe(err) })
  process.exitCode = 0
})
