//! The Subsonic login: the one user name and password that Subsonic players
//! (Symfonium, DSub, Feishin, …) sign in with, kept apart from the access token.
//!
//! Subsonic's token authentication sends `md5(password + salt)`, so the server
//! must be able to recover the password itself: it is stored as written, in its
//! own file (`DATA/subsonic-login`, readable by the owner only), never in the
//! database. Choose a password used nowhere else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{AppError, AppResult};

/// The user name Subsonic players sign in with unless the owner sets another.
pub const DEFAULT_USER: &str = "admin";

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name.
    pub user: String,
    /// The password (plain: token authentication needs it).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The Subsonic login of a station: set, read and replaced at run time (the
/// Studio's settings may change it). Cheap to clone.
#[derive(Clone)]
pub struct SubsonicLogin {
    file: PathBuf,
    current: Arc<RwLock<Option<Login>>>,
}

impl SubsonicLogin {
    /// Opens the login stored in `data_dir`, or stores `set` there (a user
    /// name alone keeps the stored password; a password alone the stored
    /// user, else `admin`).
    pub fn open(data_dir: &Path, user: Option<&str>, password: Option<&str>) -> AppResult<Self> {
        let file = data_dir.join("subsonic-login");
        let stored = read(&file)?;
        let this = Self {
            file,
            current: Arc::new(RwLock::new(stored.clone())),
        };
        let password = password.or(stored.as_ref().map(|l| l.password.as_str()));
        if let Some(password) = password {
            let user = user
                .or(stored.as_ref().map(|l| l.user.as_str()))
                .unwrap_or(DEFAULT_USER);
            let wanted = Login {
                user: user.to_owned(),
                password: password.to_owned(),
            };
            if stored.as_ref() != Some(&wanted) {
                this.set(wanted)?;
            }
        } else if user.is_some() {
            return Err(AppError::BadRequest(
                "--subsonic-user needs a password: add --subsonic-password (or set SONANTICA_SUBSONIC_PASSWORD)".into(),
            ));
        }
        Ok(this)
    }

    /// The login, if the owner set one.
    pub fn get(&self) -> Option<Login> {
        self.current.read().ok().and_then(|l| l.clone())
    }

    /// Replaces the login (and its file: written whole, then renamed).
    pub fn set(&self, login: Login) -> AppResult<()> {
        check("user name", &login.user)?;
        check("password", &login.password)?;
        write(&self.file, &login)?;
        if let Ok(mut l) = self.current.write() {
            *l = Some(login);
        }
        Ok(())
    }
}

/// One line, 1 to 200 characters: the file holds one per line.
fn check(what: &str, s: &str) -> AppResult<()> {
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "the Subsonic {what} must be 1-200 characters on one line"
        )));
    }
    Ok(())
}

fn read(file: &Path) -> AppResult<Option<Login>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AppError::io(file, e)),
    };
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(user), Some(password)) if !user.is_empty() && !password.is_empty() => {
            Ok(Some(Login {
                user: user.to_owned(),
                password: password.to_owned(),
            }))
        }
        _ => Err(AppError::BadRequest(format!(
            "{}: not a Subsonic login (a user name line, then a password line); remove it or set --subsonic-password",
            file.display()
        ))),
    }
}

fn write(file: &Path, login: &Login) -> AppResult<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| AppError::io(dir, e))?;
    // Owner only, before the password is in it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| AppError::io(tmp.path(), e))?;
    }
    writeln!(tmp, "{}\n{}", login.user, login.password).map_err(|e| AppError::io(file, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| AppError::io(file, e))?;
    tmp.persist(file).map_err(|e| AppError::io(file, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_is_kept_in_an_owner_only_file_and_read_back() -> AppResult<()> {
        let dir = tempfile::tempdir().map_err(|e| AppError::Internal(e.to_string()))?;
        assert_eq!(SubsonicLogin::open(dir.path(), None, None)?.get(), None);
        let l = SubsonicLogin::open(dir.path(), None, Some("s3cret"))?;
        assert_eq!(l.get().map(|l| l.user), Some(DEFAULT_USER.to_owned()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("subsonic-login"))
                .map_err(|e| AppError::Internal(e.to_string()))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A new name keeps the stored password.
        let l = SubsonicLogin::open(dir.path(), Some("ana"), None)?;
        assert_eq!(
            l.get(),
            Some(Login {
                user: "ana".into(),
                password: "s3cret".into()
            })
        );
        assert!(SubsonicLogin::open(dir.path(), None, Some("two\nlines")).is_err());
        Ok(())
    }

    #[test]
    fn a_user_name_without_any_password_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = SubsonicLogin::open(dir.path(), Some("ana"), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--subsonic-password"), "{err}");
    }
}
