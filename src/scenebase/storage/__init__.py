"""Storage backends: catalog (SQL), blobs (folder/S3), job queue (huey). Chosen by URL, never by ``if``s
spread through the code."""
