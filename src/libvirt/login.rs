//! How init's own libvirt work (readiness, starting the guests of the last run, stopping the
//! guests, `virtpod health`) logs in to libvirt. With SASL on, libvirt asks every client of its
//! sockets for a password, init's helpers included: without one they were refused ("No worthy
//! mechs found"), so libvirt never counted as ready and no guest was shut down at a stop. They
//! log in as the first user of `VIRTPOD_SASL_CREDENTIALS`, read from the same file the user
//! database is made from at every start, so no password is kept anywhere else. Every other
//! access setting needs nothing: the helpers run as root in the container, the socket's owner,
//! and libvirt lets root past polkit.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use virt::connect::{Connect, ConnectAuth, ConnectCredential};
use virt::sys;

/// A SASL user and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?})", self.user)
    }
}

impl Login {
    /// The first user of a credentials file: the one init's helpers log in as.
    pub fn from_file(credentials: &Path) -> Result<Login> {
        let users = crate::init::sasl::read_credentials(credentials).with_context(|| {
            format!(
                "VIRTPOD_SASL_CREDENTIALS={}: init cannot log in to libvirt",
                credentials.display()
            )
        })?;
        let (user, password) = users
            .into_iter()
            .next()
            .expect("parse refuses an empty list");
        Ok(Login { user, password })
    }

    /// libvirt's questions answered: the user for the names, the password for the passphrase,
    /// libvirt's own default for anything else.
    fn answer(&self, creds: &mut [ConnectCredential]) {
        for cred in creds {
            let answer = match cred.typed as u32 {
                sys::VIR_CRED_AUTHNAME | sys::VIR_CRED_USERNAME => self.user.clone(),
                sys::VIR_CRED_PASSPHRASE | sys::VIR_CRED_NOECHOPROMPT => self.password.clone(),
                _ => cred.def_result.clone(),
            };
            cred.result = Some(answer);
        }
    }
}

/// virt's callback is a plain `fn`, so the login it answers with is process-wide; each helper
/// process connects with one login only.
static LOGIN: OnceLock<Login> = OnceLock::new();

#[allow(clippy::ptr_arg)] // virt's ConnectAuthCallback type takes the Vec
fn answer_with_login(creds: &mut Vec<ConnectCredential>) {
    if let Some(login) = LOGIN.get() {
        login.answer(creds);
    }
}

/// Opens `uri` as `login` says: plainly without one, else answering libvirt's SASL questions.
pub fn open(uri: &str, login: Option<&Login>) -> Result<Connect, virt::error::Error> {
    let Some(login) = login else {
        return Connect::open(Some(uri));
    };
    let _ = LOGIN.set(login.clone());
    let mut auth = ConnectAuth::new(
        vec![
            sys::VIR_CRED_AUTHNAME,
            sys::VIR_CRED_USERNAME,
            sys::VIR_CRED_PASSPHRASE,
            sys::VIR_CRED_NOECHOPROMPT,
        ],
        answer_with_login,
    );
    Connect::open_auth(Some(uri), &mut auth, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(typed: u32) -> ConnectCredential {
        ConnectCredential {
            typed: typed as i32,
            prompt: String::new(),
            challenge: String::new(),
            def_result: "default".into(),
            result: None,
        }
    }

    #[test]
    fn the_first_user_of_the_file_answers_libvirts_questions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(&file, "# admins\nadmin:correct horse\nbob:pw\n").unwrap();
        let login = Login::from_file(&file).unwrap();
        assert_eq!(login.user, "admin");
        assert!(
            !format!("{login:?}").contains("horse"),
            "never print a password"
        );
        let mut creds = vec![
            cred(sys::VIR_CRED_AUTHNAME),
            cred(sys::VIR_CRED_PASSPHRASE),
            cred(sys::VIR_CRED_REALM),
        ];
        login.answer(&mut creds);
        let answers: Vec<_> = creds.iter().map(|c| c.result.as_deref()).collect();
        assert_eq!(
            answers,
            [Some("admin"), Some("correct horse"), Some("default")]
        );
    }

    #[test]
    fn an_unreadable_file_names_the_setting() {
        let e = Login::from_file(Path::new("/nonexistent/sasl"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("VIRTPOD_SASL_CREDENTIALS=/nonexistent/sasl"),
            "{e}"
        );
    }
}
