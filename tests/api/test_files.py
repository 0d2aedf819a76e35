"""Files: multipart upload, retrieve, content, list (purpose, cursors), delete, expiry."""

from __future__ import annotations

import hashlib
import io
import os

import httpx
import openai
import pytest

from tests.servers import Server


def test_upload_retrieve_content_delete(client: openai.OpenAI) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # over Starlette's in-memory spool size
    created = client.files.create(file=("report.bin", io.BytesIO(data)), purpose="assistants")
    assert created.id.startswith("file-") and created.object == "file"
    assert created.bytes == len(data) and created.filename == "report.bin"
    assert created.purpose == "assistants" and created.status == "processed"
    assert client.files.retrieve(created.id).model_dump() == created.model_dump()
    assert client.files.wait_for_processing(created.id).status == "processed"
    content = client.files.content(created.id).read()
    assert hashlib.sha256(content).digest() == hashlib.sha256(data).digest()
    gone = client.files.delete(created.id)
    assert gone.deleted is True and gone.id == created.id and gone.object == "file"
    with pytest.raises(openai.NotFoundError) as exc:
        client.files.retrieve(created.id)
    assert f"No file found with id '{created.id}'." in str(exc.value)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)


def test_filename_is_not_a_path(client: openai.OpenAI, server: Server) -> None:
    created = client.files.create(
        file=("../../etc/passwd", io.BytesIO(b"harmless")), purpose="user_data"
    )
    assert created.filename == "../../etc/passwd"
    assert client.files.content(created.id).read() == b"harmless"
    data_dir = server.env["ASSISTANTD_DATA_DIR"]
    stored = [f for _, _, names in os.walk(data_dir) for f in names]
    # the blob is named after the file id; the client's name never becomes a path
    assert created.id in stored and not any("passwd" in f for f in stored)


def test_list_by_purpose_and_cursor(server: Server) -> None:
    key = server.new_key("files-list")
    with openai.OpenAI(
        base_url=server.base_url + "/v1", api_key=key, _strict_response_validation=True
    ) as client:
        made = [
            client.files.create(
                file=(f"f{i}.txt", io.BytesIO(b"x" * i)),
                purpose="assistants" if i % 2 else "user_data",
            )
            for i in range(9)
        ]
        ids = [f.id for f in made]
        listed = client.files.list()
        assert [f.id for f in listed.data] == list(reversed(ids))
        assistants = client.files.list(purpose="assistants", order="asc")
        assert [f.id for f in assistants.data] == ids[1::2]
        page = client.files.list(limit=3, order="asc")
        assert [f.id for f in page.data] == ids[:3] and page.has_more
        assert [f.id for f in client.files.list(limit=2, order="asc")] == ids  # auto-paging


def test_upload_errors(http: httpx.Client) -> None:
    bad_purpose = http.post(
        "/v1/files", files={"file": ("a.txt", b"a")}, data={"purpose": "nonsense"}
    )
    assert bad_purpose.status_code == 400 and bad_purpose.json()["error"]["param"] == "purpose"
    no_file = http.post("/v1/files", data={"purpose": "assistants"}, files={"x": ("a", b"a")})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    no_purpose = http.post("/v1/files", files={"file": ("a.txt", b"a")})
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["param"] == "purpose"
    as_json = http.post("/v1/files", json={"purpose": "assistants"})
    assert as_json.status_code == 400
    expiry = http.post(
        "/v1/files",
        files={"file": ("a.txt", b"a")},
        data={
            "purpose": "assistants",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "60",
        },
    )
    assert expiry.status_code == 400
    assert expiry.json()["error"]["param"] == "expires_after.seconds"
    for resp in (bad_purpose, no_file, no_purpose, as_json, expiry):
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_expires_after(client: openai.OpenAI) -> None:
    created = client.files.create(
        file=("temp.txt", io.BytesIO(b"soon gone")),
        purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.expires_at == created.created_at + 3600


def test_expires_after_as_one_json_part(http: httpx.Client) -> None:
    # Found by tests/fuzz: OpenAPI's default multipart encoding of the `expires_after` object
    # (one JSON part) was silently ignored, so the file never expired.
    def upload(expires_after: str) -> httpx.Response:
        return http.post(
            "/v1/files",
            files={"file": ("a.txt", b"a")},
            data={"purpose": "assistants", "expires_after": expires_after},
        )

    made = upload('{"anchor": "created_at", "seconds": 3600}')
    assert made.status_code == 200, made.text
    assert made.json()["expires_at"] == made.json()["created_at"] + 3600
    for bad, param in (
        ('{"anchor": "created_at"}', "expires_after.seconds"),
        ('{"anchor": "created_at", "seconds": "3600"}', "expires_after.seconds"),
        ('{"seconds": 3600}', "expires_after.anchor"),
        ("3600", "expires_after"),
        ("{not json", "expires_after"),
    ):
        response = upload(bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["param"] == param, (bad, response.text)


def test_unknown_upload_field_is_400(http: httpx.Client) -> None:
    # Found by tests/fuzz: unknown multipart fields were ignored; JSON bodies refuse them.
    response = http.post(
        "/v1/files", files={"file": ("a.txt", b"a")}, data={"purpose": "assistants", "x": "1"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {
        "message": "Unknown parameter: 'x'.",
        "type": "invalid_request_error",
        "param": "x",
        "code": None,
    }


def test_no_null_optional_fields(http: httpx.Client) -> None:
    # Found by tests/fuzz: `expires_at` and `status_details` were null; the spec makes them
    # optional but not nullable, so they are left out when there is no value.
    made = http.post("/v1/files", files={"file": ("a.txt", b"a")}, data={"purpose": "assistants"})
    assert made.status_code == 200, made.text
    for body in (made.json(), http.get(f"/v1/files/{made.json()['id']}").json()):
        assert "expires_at" not in body and "status_details" not in body, body


def test_files_are_per_project(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    created = client.files.create(file=("mine.txt", io.BytesIO(b"secret")), purpose="assistants")
    with pytest.raises(openai.NotFoundError):
        other_client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other_client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        other_client.files.delete(created.id)
    assert created.id not in [f.id for f in other_client.files.list()]
    assert client.files.retrieve(created.id).id == created.id
