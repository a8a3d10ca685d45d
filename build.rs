//! Build script: compiles `proto/pbx/model.proto`, the Tinode gRPC wire contract, into the
//! prost types that `src/proto/pb.rs` includes, and generates the server side of its `pbx.Node`
//! service with tonic's codegen for `src/transport/grpc.rs`. The compiler is protox (pure Rust),
//! so the build needs no `protoc` binary.
//!
//! The service is generated from the same descriptor, method by method (names, routes,
//! streaming), but with raw bytes as its request and response types and a pass-through codec:
//! the transport decodes client messages itself (so a malformed one is answered, not fatal) and
//! writes the protobuf bytes that the shard already encoded once per message for all its gRPC
//! recipients.

fn main() {
    commit();
    println!("cargo:rerun-if-changed=proto/pbx/model.proto");
    println!("cargo:rerun-if-changed=build.rs");
    let fds = protox::compile(["pbx/model.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("proto/pbx/model.proto: {e:?}"));
    let mut node = tonic_build::manual::Service::builder()
        .name("Node")
        .package("pbx");
    let mut found = false;
    for file in &fds.file {
        for svc in file.service.iter().filter(|s| s.name() == "Node") {
            found = true;
            for m in &svc.method {
                let mut b = tonic_build::manual::Method::builder()
                    .name(snake_case(m.name()))
                    .route_name(m.name())
                    .input_type("crate::transport::grpc::RawMsg")
                    .output_type("crate::transport::grpc::RawMsg")
                    .codec_path("crate::transport::grpc::RawCodec");
                if m.client_streaming() {
                    b = b.client_streaming();
                }
                if m.server_streaming() {
                    b = b.server_streaming();
                }
                node = node.method(b.build());
            }
        }
    }
    assert!(found, "proto/pbx/model.proto has no service pbx.Node");
    tonic_build::manual::Builder::new()
        .build_client(false)
        .build_transport(false)
        .compile(&[node.build()]);
    prost_build::Config::new()
        // Maps encode in key order, so the same message always gives the same bytes.
        .btree_map(["."])
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("prost-build: {e}"));
}

/// `MessageLoop` → `message_loop`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `CORETALK_COMMIT`: the short hash of the commit being built (`unknown` outside a git
/// checkout), for `coretalk --version`. Rebuilt when HEAD moves.
fn commit() {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    let hash = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=CORETALK_COMMIT={hash}");
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
