//! Masks secrets in a configuration before it is shown (`vigil config show`).
//!
//! The loader already keeps secrets out of error messages; showing the effective configuration
//! must not leak them either. Masked: the values of keys whose names mark them as secret (the
//! same words the loader uses), every value under a `headers` table (an `Authorization` header is
//! a credential whatever its name), and the path, query and user info of `url` values (a Slack
//! incoming-webhook URL carries its token in the path), keeping the scheme and host so the user
//! can still tell where events go.

use toml::Value;

/// The placeholder shown instead of a secret.
const MASK: &str = "***";

/// Masks secrets in `value` in place.
pub fn redact(value: &mut Value) {
    redact_in(value, false);
}

fn redact_in(value: &mut Value, under_headers: bool) {
    match value {
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                if under_headers || super::load::is_secret_name(key) {
                    mask_leaves(item);
                } else if key == "url" {
                    if let Value::String(url) = item {
                        *url = mask_url(url);
                    }
                } else {
                    redact_in(item, key == "headers");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_in(item, under_headers)),
        _ => {}
    }
}

fn mask_leaves(value: &mut Value) {
    match value {
        Value::Table(table) => table.iter_mut().for_each(|(_, item)| mask_leaves(item)),
        Value::Array(items) => items.iter_mut().for_each(mask_leaves),
        other => *other = Value::String(MASK.to_owned()),
    }
}

/// `https://user:pw@hooks.example.com/services/T/B/X?k=v` → `https://hooks.example.com/***`.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return MASK.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if rest.len() > authority.len() || authority.contains('@') {
        format!("{scheme}://{host}/{MASK}")
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_headers_and_url_paths_are_masked() {
        let mut value: Value = toml::from_str(
            r#"
            [listeners.webhook.slack]
            url = "https://user:pw@hooks.slack.example/services/T0/B0/XYZ?x=1"
            headers = { Authorization = "Bearer abc", X-Extra = "tok" }
            message = "kept"
            [api]
            token = "s3cr3t"
            retries = [1, 2]
            [other]
            url = "http://127.0.0.1:8080"
            "#,
        )
        .unwrap();
        redact(&mut value);
        let text = toml::to_string(&value).unwrap();
        for secret in ["pw", "XYZ", "services", "Bearer", "abc", "s3cr3t", "tok\""] {
            assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
        }
        let hook = &value["listeners"]["webhook"]["slack"];
        assert_eq!(hook["url"].as_str(), Some("https://hooks.slack.example/***"));
        assert_eq!(hook["message"].as_str(), Some("kept"));
        assert_eq!(value["other"]["url"].as_str(), Some("http://127.0.0.1:8080"));
        assert_eq!(value["api"]["retries"][1].as_integer(), Some(2));
    }
}
