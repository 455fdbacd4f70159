//! Files uploaded through the API, stored content-addressed under `DATA_DIR/uploads/`: one
//! file per 4 MiB chunk named by its BLAKE3 hash, and a record per upload in the store.

use shoal_types::files::Hash;

/// The upload store. Cheap to share (`App::uploads`).
pub struct Uploads {
    dir: std::path::PathBuf,
}

impl Uploads {
    pub fn new(data_dir: &std::path::Path) -> Uploads {
        Uploads {
            dir: data_dir.join("uploads"),
        }
    }

    /// The bytes of chunk `hash`, verified against it (blocking IO on a blocking thread).
    pub async fn read_chunk(&self, hash: &Hash) -> std::io::Result<Vec<u8>> {
        let path = self.dir.join("chunks").join(shoal_types::files::to_hex(hash));
        let bytes = tokio::fs::read(&path).await?;
        if *blake3::hash(&bytes).as_bytes() != *hash {
            return Err(std::io::Error::other(format!(
                "stored chunk {} is corrupt",
                path.display()
            )));
        }
        Ok(bytes)
    }
}
