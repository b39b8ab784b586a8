//! A figure of vector drawing and raster layers: plotters draws axes,
//! labels and lines as SVG; heat maps are images of one pixel per grid
//! cell, embedded in the SVG as PNG (`<image>`, drawn with crisp edges) and
//! drawn into PNG output at the same place, under the drawing, scaled
//! without smoothing. A 128×128 field thus costs one small image instead
//! of 16 384 rectangles.

use std::path::Path;

use base64::Engine as _;
use resvg::tiny_skia::{FilterQuality, Pixmap, PixmapPaint, Transform};

use super::{rasterize_over, write_atomically, Format};

/// An image placed at a rectangle of the figure (pixels).
pub(super) struct Layer {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) image: Pixmap,
}

/// An SVG document drawn on a transparent background, and the images under it.
pub(super) struct Figure {
    pub(super) svg: String,
    pub(super) layers: Vec<Layer>,
}

impl Figure {
    /// The SVG document with a white background and the layers as
    /// embedded PNG images under the drawing.
    pub(super) fn to_svg(&self) -> Result<String, String> {
        let mut under =
            String::from("<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n");
        for layer in &self.layers {
            let png = layer.image.encode_png().map_err(|e| format!("cannot encode an image: {e}"))?;
            let data = base64::engine::general_purpose::STANDARD.encode(png);
            under += &format!(
                "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" \
                 image-rendering=\"pixelated\" style=\"image-rendering:pixelated\" \
                 xlink:href=\"data:image/png;base64,{data}\"/>\n",
                layer.x, layer.y, layer.width, layer.height
            );
        }
        // After the opening tag, so that everything else draws over it;
        // `xlink:href` (SVG 1.1) for the viewers that do not read SVG 2's `href`.
        let start = self.svg.find("<svg").ok_or("the drawing is not an SVG document")?;
        let end = start + self.svg[start..].find('>').ok_or("the drawing is not an SVG document")?;
        let xlink = if self.svg[start..end].contains("xmlns:xlink") {
            ""
        } else {
            " xmlns:xlink=\"http://www.w3.org/1999/xlink\""
        };
        Ok(format!("{}{xlink}>\n{under}{}", &self.svg[..end], &self.svg[end + 1..]))
    }

    /// The figure as a PNG image: white, the layers, then the drawing.
    pub(super) fn to_png(&self) -> Result<Vec<u8>, String> {
        let pixmap = rasterize_over(&self.svg, |pixmap| {
            pixmap.fill(resvg::tiny_skia::Color::WHITE);
            let paint = PixmapPaint { quality: FilterQuality::Nearest, ..Default::default() };
            for layer in &self.layers {
                let sx = layer.width as f32 / layer.image.width() as f32;
                let sy = layer.height as f32 / layer.image.height() as f32;
                let at = Transform::from_row(sx, 0.0, 0.0, sy, layer.x as f32, layer.y as f32);
                pixmap.draw_pixmap(0, 0, layer.image.as_ref(), &paint, at, None);
            }
        })?;
        pixmap.encode_png().map_err(|e| format!("cannot encode the PNG image: {e}"))
    }

    /// Writes the figure to `path` in `format`.
    pub(super) fn write(&self, path: &Path, format: Format) -> Result<(), String> {
        let bytes = match format {
            Format::Svg => self.to_svg()?.into_bytes(),
            Format::Png => self.to_png()?,
        };
        write_atomically(path, &bytes)
    }
}

/// An image of `width × height` pixels with the colour `colour(column, row)`.
pub(super) fn image(
    width: usize,
    height: usize,
    colour: impl Fn(usize, usize) -> plotters::style::RGBColor,
) -> Result<Pixmap, String> {
    let mut pixmap = Pixmap::new(width as u32, height as u32)
        .ok_or_else(|| format!("cannot make an image of {width}×{height} cells"))?;
    for (i, pixel) in pixmap.pixels_mut().iter_mut().enumerate() {
        let c = colour(i % width, i / width);
        *pixel = resvg::tiny_skia::PremultipliedColorU8::from_rgba(c.0, c.1, c.2, 255)
            .unwrap_or(resvg::tiny_skia::PremultipliedColorU8::TRANSPARENT);
    }
    Ok(pixmap)
}
