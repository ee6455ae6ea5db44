//! Images and fields from a request: a raw body (the image's bytes, any content type but a
//! form) or a `multipart/form-data` form (files and text fields). The body is read up to the
//! size limit (413 past it); the images are decoded later, under the library's decode limits.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};

use super::errors::{ApiError, ApiResult};
use crate::error::FdbError;
use crate::image_input::ImageInput;

/// One uploaded image.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The form field it came in (`body` for a raw body).
    pub field: String,
    /// The file name the client gave, if any.
    pub filename: Option<String>,
    /// The encoded image.
    pub bytes: Bytes,
}

impl Upload {
    /// The image for the library.
    pub fn input(&self) -> ImageInput<'_> {
        ImageInput::Encoded(&self.bytes)
    }

    /// How answers name it: its file name, else the library's label.
    pub fn name(&self) -> String {
        self.filename.clone().unwrap_or_else(|| self.input().label())
    }

    /// A library error about this image, naming the upload by its file name.
    pub fn error(&self, e: FdbError) -> ApiError {
        let mut error = ApiError::from(e);
        if let Some(name) = &self.filename {
            error.message = error.message.replacen(&self.input().label(), &format!("{name} ({})", self.input().label()), 1);
        }
        error
    }
}

/// A request's images and text fields.
#[derive(Debug, Default)]
pub struct Form {
    /// The images, in order.
    pub uploads: Vec<Upload>,
    /// Text fields (name, value).
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// Reads `request`'s body (at most `max_body` bytes) as a raw image or a multipart form.
    pub async fn read(request: Request, max_body: usize) -> ApiResult<Form> {
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, max_body).await?;
        if !multipart {
            if bytes.is_empty() {
                return Err(ApiError::bad_request("the request has no body: send the image's bytes, or a multipart/form-data form with the image as a file"));
            }
            return Ok(Form { uploads: vec![Upload { field: "body".into(), filename: None, bytes }], fields: Vec::new() });
        }
        let request = Request::from_parts(parts, Body::from(bytes));
        let mut form = Multipart::from_request(request, &()).await.map_err(|e| ApiError::bad_request(format!("the form: {e}")))?;
        let mut out = Form::default();
        while let Some(field) = form.next_field().await.map_err(|e| ApiError::bad_request(format!("the form: {e}")))? {
            let name = field.name().unwrap_or_default().to_string();
            let filename = field.file_name().map(str::to_string);
            let is_file = filename.is_some() || field.content_type().is_some_and(|t| !t.starts_with("text/"));
            let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(format!("the form's field {name:?}: {e}")))?;
            if is_file {
                out.uploads.push(Upload { field: name, filename, bytes });
            } else {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::bad_request(format!("the form's field {name:?} is not UTF-8 text")))?;
                out.fields.push((name, text));
            }
        }
        Ok(out)
    }

    /// The text field `name`, if sent.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The one image a search or an embedding takes.
    pub fn one_image(mut self) -> ApiResult<Upload> {
        match self.uploads.len() {
            1 => Ok(self.uploads.remove(0)),
            0 => Err(ApiError::bad_request("no image: send the image's bytes as the body, or as a file in a multipart form")),
            n => Err(ApiError::bad_request(format!("{n} images: this endpoint takes one"))),
        }
    }

    /// The two images of a verification: the fields `a` and `b`, else the first two files.
    pub fn two_images(mut self) -> ApiResult<[Upload; 2]> {
        let a = self.uploads.iter().position(|u| u.field == "a");
        let b = self.uploads.iter().position(|u| u.field == "b");
        if let (Some(a), Some(b)) = (a, b) {
            let (first, second) = (self.uploads[a].clone(), self.uploads[b].clone());
            return Ok([first, second]);
        }
        if self.uploads.len() != 2 {
            return Err(ApiError::bad_request(format!(
                "{} images: verify takes two, as the files `a` and `b` of a multipart form",
                self.uploads.len()
            )));
        }
        let b = self.uploads.remove(1);
        Ok([self.uploads.remove(0), b])
    }
}

/// The body's bytes, or 413 past `max`.
async fn read_body(body: Body, max: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        // axum reports the limit as "length limit exceeded"; its error type is not public.
        if e.to_string().contains("length limit") {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the request body is over the limit of {max} bytes (--max-body)"))
        } else {
            ApiError::bad_request(format!("reading the request body: {e}"))
        }
    })
}
