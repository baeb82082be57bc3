//! An S3-compatible server for tests and the benchmark: s3s + s3s-fs,
//! checking every request's signature against one key pair.

use std::path::Path;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "parley-test";
/// Its secret.
pub const SECRET_KEY: &str = "parley-test-secret-0123456789";

/// Serves S3 on `listener`, storing under `root`, until the task is
/// dropped. Accepted sockets get `TCP_NODELAY`.
pub async fn serve(root: &Path, listener: tokio::net::TcpListener) {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    while let Ok((sock, _)) = listener.accept().await {
        sock.set_nodelay(true).unwrap();
        let service = service.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(sock);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}
