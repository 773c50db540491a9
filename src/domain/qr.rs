//! QR codes of `otpauth://` URLs as PNG data URIs, which any page can show in an `<img>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::Luma;
use qrcode::{EcLevel, QrCode};

use crate::error::AppError;

/// Renders `text` as a QR code PNG (4-module quiet zone, 6 px modules) in a data URI.
pub fn png_data_uri(text: &str) -> Result<String, AppError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(AppError::internal)?;
    let image = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(6, 6)
        .build();
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(AppError::internal)?;
    Ok(format!("data:image/png;base64,{}", STANDARD.encode(&png)))
}
