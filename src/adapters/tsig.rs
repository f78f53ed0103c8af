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
    /// Reads the secret and builds the signer. The secret is base64, as
    /// `tsig-keygen`, `keymgr` and `pdnsutil` print it.
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
        let key = data_encoding::BASE64
            .decode(text.as_bytes())
            .map_err(|_| format!("the TSIG secret in {} is not valid base64", self.secret))?;
        let name = Name::from_ascii(&self.name)
            .map_err(|e| format!("TSIG key name `{}` is not a valid name: {e}", self.name))?;
        TSigner::new(key, algorithm, name, FUDGE)
            .map_err(|e| format!("cannot use TSIG key `{}`: {e}", self.name))
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
}
