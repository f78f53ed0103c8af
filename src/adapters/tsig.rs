//! TSIG keys for RFC 2136 updates. The secret comes from the environment
//! (`tsig_secret_env`) or a file (`tsig_secret_file`), never from the script
//! text; errors name the variable or file, never the secret.

use hickory_proto::rr::Name;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

pub use crate::ports::dns::{SecretSource, TsigKey};

/// Fudge: how far apart the client's and server's clocks may be (seconds).
const FUDGE: u16 = 300;

pub fn algorithm(name: &str) -> Result<TsigAlgorithm, String> {
    match name
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .as_str()
    {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        other => Err(format!(
            "TSIG algorithm `{other}` is not supported (hmac-sha256, hmac-sha384, hmac-sha512)"
        )),
    }
}

impl TsigKey {
    /// Reads the secret and builds the signer. The secret is base64, bare
    /// or in the files people have: `nsupdate -y` / `knsupdate` form
    /// (`hmac-sha256:name:secret`), BIND's `key "name" { algorithm …;
    /// secret "…"; };` (tsig-keygen) and Knot's `keymgr -t` output; a name
    /// or algorithm the file states must match the spec's.
    pub fn signer(&self) -> Result<TSigner, String> {
        let algorithm = algorithm(&self.algorithm)?;
        let text = match &self.secret {
            SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                format!(
                    "the TSIG secret is not set: environment variable {var} is missing or not UTF-8"
                )
            })?,
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "the TSIG secret cannot be read from file {}: {}",
                    path.display(),
                    e.kind()
                )
            })?,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("the TSIG secret in {} is empty", self.secret));
        }
        let found =
            parse_key(text).map_err(|why| format!("the TSIG key in {} {why}", self.secret))?;
        let same = |a: &str, b: &str| {
            a.trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.'))
        };
        if let Some(name) = &found.name
            && !same(name, &self.name)
        {
            return Err(format!(
                "the TSIG key in {} is named `{name}`, but the spec names `{}` (tsig_name)",
                self.secret, self.name
            ));
        }
        if let Some(alg) = &found.algorithm
            && !same(alg, &self.algorithm)
        {
            return Err(format!(
                "the TSIG key in {} is {alg}, but the spec says {} (tsig_algorithm)",
                self.secret, self.algorithm
            ));
        }
        let key = data_encoding::BASE64
            .decode(found.secret.as_bytes())
            .map_err(|_| format!("the TSIG secret in {} is not valid base64", self.secret))?;
        let name = Name::from_ascii(&self.name)
            .map_err(|e| format!("TSIG key name `{}` is not a valid name: {e}", self.name))?;
        TSigner::new(key, algorithm, name, FUDGE)
            .map_err(|e| format!("cannot use TSIG key `{}`: {e}", self.name))
    }
}

/// What a key file says: the secret, and the name and algorithm if it
/// states them.
#[derive(Debug, PartialEq, Eq)]
struct KeyText {
    name: Option<String>,
    algorithm: Option<String>,
    secret: String,
}

/// Reads one of the key formats; the error never quotes the file.
fn parse_key(text: &str) -> Result<KeyText, String> {
    let unquote = |v: &str| {
        v.trim()
            .trim_end_matches(';')
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    // BIND: key "name" { algorithm hmac-sha256; secret "…"; };
    if let Some(rest) = text.trim_start().strip_prefix("key ") {
        let (name, body) = rest.split_once('{').ok_or("has `key` without `{ … }`")?;
        let mut key = KeyText {
            name: Some(unquote(name)),
            algorithm: None,
            secret: String::new(),
        };
        for statement in body.split(';') {
            let statement = statement.trim();
            if let Some(v) = statement.strip_prefix("algorithm") {
                key.algorithm = Some(unquote(v));
            } else if let Some(v) = statement.strip_prefix("secret") {
                key.secret = unquote(v);
            }
        }
        if key.secret.is_empty() {
            return Err("has a `key` block without `secret`".into());
        }
        return Ok(key);
    }
    // Knot keymgr: `key:` then `- id:`, `algorithm:`, `secret:` lines.
    if text.lines().any(|l| l.trim() == "key:") {
        let mut key = KeyText {
            name: None,
            algorithm: None,
            secret: String::new(),
        };
        for line in text.lines().map(|l| l.trim().trim_start_matches("- ")) {
            if let Some(v) = line.strip_prefix("id:") {
                key.name = Some(unquote(v));
            } else if let Some(v) = line.strip_prefix("algorithm:") {
                key.algorithm = Some(unquote(v));
            } else if let Some(v) = line.strip_prefix("secret:") {
                key.secret = unquote(v);
            }
        }
        if key.secret.is_empty() {
            return Err("has a Knot `key:` section without `secret:`".into());
        }
        return Ok(key);
    }
    // nsupdate -y / knsupdate: [hmac-…:]name:secret, on one line.
    let line = text
        .lines()
        .find(|l| !l.trim().starts_with('#'))
        .unwrap_or(text)
        .trim();
    let parts: Vec<&str> = line.split(':').collect();
    match parts.as_slice() {
        [secret] => Ok(KeyText {
            name: None,
            algorithm: None,
            secret: (*secret).to_owned(),
        }),
        [name, secret] => Ok(KeyText {
            name: Some((*name).to_owned()),
            algorithm: None,
            secret: (*secret).to_owned(),
        }),
        [alg, name, secret] => Ok(KeyText {
            name: Some((*name).to_owned()),
            algorithm: Some((*alg).to_owned()),
            secret: (*secret).to_owned(),
        }),
        _ => Err("is in no format ferry reads (base64, `hmac-sha256:name:secret`, BIND `key` block, Knot keymgr)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_source_but_never_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "not base64 s3cr3t!!\n").unwrap();
        let key = TsigKey {
            name: "k".into(),
            algorithm: "hmac-sha256".into(),
            secret: SecretSource::File(path.clone()),
        };
        let err = key.signer().err().unwrap();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");

        let missing = TsigKey {
            secret: SecretSource::Env("FERRY_TEST_SURELY_UNSET_TSIG".into()),
            ..key.clone()
        };
        assert!(
            missing
                .signer()
                .err()
                .unwrap()
                .contains("FERRY_TEST_SURELY_UNSET_TSIG")
        );

        std::fs::write(&path, "Zm9vYmFy\n").unwrap();
        assert!(key.signer().is_ok());
        assert!(algorithm("hmac-md5").is_err());
    }

    #[test]
    fn the_key_files_people_have_are_read_and_checked_against_the_spec() {
        let secret = "Zm9vYmFy";
        let expect = |name: Option<&str>, alg: Option<&str>| KeyText {
            name: name.map(str::to_owned),
            algorithm: alg.map(str::to_owned),
            secret: secret.to_owned(),
        };
        assert_eq!(parse_key(secret).unwrap(), expect(None, None));
        assert_eq!(
            parse_key("hmac-sha256:ferry:Zm9vYmFy").unwrap(),
            expect(Some("ferry"), Some("hmac-sha256"))
        );
        assert_eq!(
            parse_key("ferry:Zm9vYmFy").unwrap(),
            expect(Some("ferry"), None)
        );
        let bind = "key \"ferry\" {\n\talgorithm hmac-sha256;\n\tsecret \"Zm9vYmFy\";\n};\n";
        assert_eq!(
            parse_key(bind).unwrap(),
            expect(Some("ferry"), Some("hmac-sha256"))
        );
        let knot = "# hmac-sha256:ferry:Zm9vYmFy\nkey:\n  - id: ferry\n    algorithm: hmac-sha256\n    secret: Zm9vYmFy\n";
        assert_eq!(
            parse_key(knot).unwrap(),
            expect(Some("ferry"), Some("hmac-sha256"))
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, bind).unwrap();
        let key = TsigKey {
            name: "ferry".into(),
            algorithm: "hmac-sha256".into(),
            secret: SecretSource::File(path.clone()),
        };
        assert!(key.signer().is_ok());
        let other = TsigKey {
            name: "someone-else".into(),
            ..key.clone()
        };
        let err = other.signer().err().unwrap();
        assert!(
            err.contains("is named `ferry`, but the spec names `someone-else`"),
            "{err}"
        );
        assert!(!err.contains(secret), "{err}");
        let sha512 = TsigKey {
            algorithm: "hmac-sha512".into(),
            ..key
        };
        assert!(
            sha512
                .signer()
                .err()
                .unwrap()
                .contains("is hmac-sha256, but the spec says hmac-sha512")
        );
    }
}
