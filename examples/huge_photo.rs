//! Writes a huge JPEG by upscaling a photo, for measuring `fdb enroll` on 12–100 MP input
//! (docs/benchmarks.md, "Huge photos"):
//!
//! ```sh
//! cargo run --release --example huge_photo -- ../shared/datasets/lfw/images/Colin_Powell/Colin_Powell_0001.jpg 8000 6000 /tmp/mp48.jpg
//! ```

use std::io::BufWriter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, width, height, out] = args.as_slice() else {
        return Err("usage: huge_photo SRC WIDTH HEIGHT OUT.jpg".into());
    };
    let img = fdb_models::imageio::load_image(std::path::Path::new(src))?;
    let big = image::imageops::resize(&img, width.parse()?, height.parse()?, image::imageops::FilterType::Triangle);
    let file = BufWriter::new(std::fs::File::create(out)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90).encode_image(&big)?;
    Ok(())
}
