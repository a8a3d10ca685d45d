//! Build script: compiles `proto/pbx/model.proto`, the Tinode gRPC wire contract, into the
//! prost types that `src/proto/pb.rs` includes. The compiler is protox (pure Rust), so the
//! build needs no `protoc` binary.

fn main() {
    println!("cargo:rerun-if-changed=proto/pbx/model.proto");
    let fds = protox::compile(["pbx/model.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("proto/pbx/model.proto: {e:?}"));
    prost_build::Config::new()
        // Maps encode in key order, so the same message always gives the same bytes.
        .btree_map(["."])
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("prost-build: {e}"));
}
