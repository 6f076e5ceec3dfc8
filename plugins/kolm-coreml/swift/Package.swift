// swift-tools-version:5.9
// KolmChat: load a kolm Core ML export (model.mlpackage + tokenizer files) and stream a greedy reply.
// Add this package to an Xcode project, and the export folder to the app target (Xcode compiles the
// .mlpackage to model.mlmodelc). Tokenizer: Hugging Face's swift-transformers.
import PackageDescription

let package = Package(
    name: "KolmChat",
    platforms: [.iOS(.v18), .macOS(.v15)],
    products: [.library(name: "KolmChat", targets: ["KolmChat"])],
    dependencies: [
        .package(url: "https://github.com/huggingface/swift-transformers", from: "0.1.17"),
    ],
    targets: [
        .target(name: "KolmChat", dependencies: [.product(name: "Transformers", package: "swift-transformers")]),
    ]
)
