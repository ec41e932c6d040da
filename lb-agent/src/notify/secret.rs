//! A secret kept in a file (an SMTP password): read at start and on
//! reload, never written in the configuration.

use std::path::Path;

/// The file's content without its final line break; an error names the
/// file and what to do.
pub fn read(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read the password file {}: {e}; fix it and reload",
            file.display()
        )
    })?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!(
            "the password file {} is empty; put the password in it and reload",
            file.display()
        ));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_final_line_break_only() {
        let dir = std::env::temp_dir().join(format!("lb-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p");
        std::fs::write(&f, " s3cret \n").unwrap();
        assert_eq!(read(&f).unwrap(), " s3cret ");
        std::fs::write(&f, "\n").unwrap();
        assert!(read(&f).unwrap_err().contains("is empty"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read(&f).unwrap_err().contains("cannot read"));
    }
}
