//! Build script: the `pbx` prost types of the Tinode gRPC contract (`../proto/pbx/model.proto`,
//! the server's own copy) for the gRPC client adapter. protox compiles the file in pure Rust
//! (no `protoc`); only messages are generated, no service code.

fn main() {
    println!("cargo:rerun-if-changed=../proto/pbx/model.proto");
    println!("cargo:rerun-if-changed=build.rs");
    let fds = protox::compile(["pbx/model.proto"], ["../proto"])
        .unwrap_or_else(|e| panic!("../proto/pbx/model.proto: {e:?}"));
    prost_build::Config::new()
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("prost-build: {e}"));
}
