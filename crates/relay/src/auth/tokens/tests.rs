use super::*;
use crate::auth::secret::Secret;

const NOW: i64 = 1_800_000_000;

fn keys() -> TokenKeys {
    TokenKeys::new(&Secret::generate())
}

#[test]
fn runner_token_round_trips() {
    let k = keys();
    let t = k
        .mint_runner("u1", "r1", "j1", NOW, RUNNER_TOKEN_TTL_SECS)
        .expect("mint");
    let c = k.verify_runner(&t, NOW + 10).expect("verify");
    assert_eq!(
        (c.sub.as_str(), c.runner_id.as_str(), c.jti.as_str()),
        ("u1", "r1", "j1")
    );
    assert_eq!((c.typ.as_str(), c.aud.as_str()), (RUNNER_TYP, RUNNER_AUD));
    assert_eq!(c.exp - c.iat, 30 * 24 * 3600);
}

#[test]
fn types_are_exclusive() {
    let k = keys();
    let runner = k.mint_runner("u1", "r1", "j1", NOW, 3600).expect("mint");
    let browser = k
        .mint_browser("u1", "r1", "s1", "l1", "j2", NOW, 300)
        .expect("mint");
    assert!(matches!(
        k.verify_browser(&runner, NOW),
        Err(AuthError::InvalidToken)
    ));
    assert!(matches!(
        k.verify_runner(&browser, NOW),
        Err(AuthError::InvalidToken)
    ));
    assert!(k.verify_browser(&browser, NOW).is_ok());
}

#[test]
fn expiry_uses_the_given_time_with_five_seconds_leeway() {
    let k = keys();
    let t = k
        .mint_browser("u", "r", "s", "l", "j", NOW, 300)
        .expect("mint");
    assert!(k.verify_browser(&t, NOW + 300 + LEEWAY_SECS as i64).is_ok());
    assert!(matches!(
        k.verify_browser(&t, NOW + 300 + LEEWAY_SECS as i64 + 1),
        Err(AuthError::ExpiredToken)
    ));
    // Issued in the future (beyond leeway) is refused too.
    assert!(matches!(
        k.verify_browser(&t, NOW - 60),
        Err(AuthError::InvalidToken)
    ));
}

#[test]
fn browser_tokens_never_outlive_five_minutes() {
    let k = keys();
    let t = k
        .mint_browser("u", "r", "s", "l", "j", NOW, 3600)
        .expect("mint");
    let c = k.verify_browser(&t, NOW).expect("verify");
    assert_eq!(c.exp - c.iat, BROWSER_TOKEN_TTL_SECS);
}

#[test]
fn another_key_fails() {
    let (a, b) = (keys(), keys());
    let t = a.mint_runner("u", "r", "j", NOW, 3600).expect("mint");
    assert!(matches!(
        b.verify_runner(&t, NOW),
        Err(AuthError::InvalidToken)
    ));
}

#[test]
fn tampered_and_alg_none_tokens_fail() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let k = keys();
    let t = k.mint_runner("u", "r", "j", NOW, 3600).expect("mint");
    let parts: Vec<&str> = t.split('.').collect();
    assert_eq!(parts.len(), 3);
    // Re-signed payload claiming another user, with the original signature.
    let payload = String::from_utf8(b64.decode(parts[1]).expect("b64"))
        .expect("utf8")
        .replace("\"u\"", "\"v\"");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.as_bytes()),
        parts[2]
    );
    assert!(matches!(
        k.verify_runner(&forged, NOW),
        Err(AuthError::InvalidToken)
    ));
    // alg "none" with an empty signature.
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    assert!(matches!(
        k.verify_runner(&none, NOW),
        Err(AuthError::InvalidToken)
    ));
    // HS512 with the same secret is not accepted either (algorithms: HS256 only).
    assert!(matches!(
        k.verify_runner("garbage", NOW),
        Err(AuthError::InvalidToken)
    ));
}

#[test]
fn missing_claims_fail() {
    let secret = Secret::generate();
    let k = TokenKeys::new(&secret);
    let enc = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let no_aud = serde_json::json!({"typ":"runner","sub":"u","runner_id":"r","jti":"j","iat":NOW,"exp":NOW+60});
    let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &no_aud, &enc).expect("enc");
    assert!(k.verify_runner(&t, NOW).is_err());
    let no_typ = serde_json::json!({"aud":RUNNER_AUD,"sub":"u","runner_id":"r","jti":"j","iat":NOW,"exp":NOW+60});
    let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &no_typ, &enc).expect("enc");
    assert!(k.verify_runner(&t, NOW).is_err());
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &serde_json::json!({"typ":"runner","aud":RUNNER_AUD,"sub":"u","runner_id":"r","jti":"j","iat":NOW,"exp":NOW+60}),
        &enc,
    )
    .expect("enc");
    assert!(k.verify_runner(&hs512, NOW).is_err());
}
