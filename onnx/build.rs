//! Compiles `proto/onnx.proto` (the ONNX model format) to Rust types with
//! prost. The `.proto` file is parsed by protox, a protobuf compiler written
//! in Rust, so building needs no `protoc` and nothing but the Rust toolchain.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = match protox::compile(["onnx.proto"], ["proto"]) {
        Ok(descriptors) => descriptors,
        Err(e) => panic!("proto/onnx.proto does not compile: {e}"),
    };
    if let Err(e) = prost_build::Config::new().compile_fds(descriptors) {
        panic!("generating Rust code from proto/onnx.proto: {e}");
    }
}
