//! Compiles `proto/` into Rust: `protox` parses the files into a descriptor set (pure
//! Rust, so no `protoc` binary is needed to build), and `tonic-prost-build` generates the
//! messages and the gRPC clients and servers (`Acd`, `Raft`, `RoutingAdmin`) from it.

use std::path::PathBuf;

/// The schema files, relative to the proto root. Every file is listed, not only the
/// ones with services, so each gets its own generated module.
const FILES: &[&str] = &[
    "hotline/events/v1/events.proto",
    "hotline/acd/v1/acd.proto",
    "hotline/routing/v1/routing.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("../../proto");
    // A directory watch re-runs the script when a file is added; each file is watched too,
    // because a directory's mtime does not change when a file in a subdirectory is edited.
    println!("cargo:rerun-if-changed={}", root.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }

    let fds = protox::compile(FILES, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No transport: the client and server are generic over any tower service, and the
        // workspace builds tonic without its hyper transport.
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
