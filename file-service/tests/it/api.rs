//! The HTTP API on both backends: byte-exact transfers, ranges, limits,
//! sniffed types, names, access rules and attachment resolution.

use file_service::blob::conformance::pattern;
use serde_json::Value;
use shared_models::{FileId, RoomId};

use crate::helpers::{Kind, Service, png, sha256_hex};

const KINDS: [Kind; 2] = [Kind::Local, Kind::S3];
const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn uploads_and_downloads_are_byte_exact() {
    for kind in KINDS {
        let svc = Service::start(kind, 25 * MIB).await;
        let (a, b) = (svc.user(), svc.user());
        let room = svc.room(&[&a, &b]).await;
        // Above one S3 part: the multipart path on S3.
        let data = png(6 * 1024 * 1024 + 333);
        let res = svc.upload_raw(&a, room, "cat.png", data.clone()).await;
        assert_eq!(res.status, 201, "{kind:?}: {:?}", res.json());
        let meta = res.json();
        assert_eq!(meta["name"], "cat.png");
        assert_eq!(meta["size"], data.len() as u64);
        assert_eq!(meta["content_type"], "image/png");
        assert_eq!(meta["sha256"], sha256_hex(&data));
        assert_eq!(meta["room"], room.to_string());
        assert_eq!(meta["uploader"], a.id.to_string());
        let id = meta["id"].as_str().unwrap();

        // Another member downloads the same bytes.
        let got = svc.download(&b, id, None).await;
        assert_eq!(got.status, 200, "{kind:?}");
        assert!(got.body == data, "{kind:?}: bytes differ");
        assert_eq!(got.headers["content-type"], "image/png");
        assert!(
            got.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("inline; filename=\"cat.png\"")
        );
        if kind == Kind::Local {
            assert_eq!(got.headers["x-content-type-options"], "nosniff");
        }
        let m = svc.call(&b, "GET", &format!("/api/files/{id}/meta")).await;
        assert_eq!(m.status, 200);
        assert_eq!(m.json(), meta);

        // The multipart form path, with a small PDF.
        let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec();
        let res = svc
            .upload_form(&b, room, "report.pdf", "application/pdf", &pdf)
            .await;
        assert_eq!(res.status, 201, "{kind:?}: {:?}", res.json());
        assert_eq!(res.json()["content_type"], "application/pdf");
        let got = svc
            .download(&a, res.json()["id"].as_str().unwrap(), None)
            .await;
        assert_eq!(got.body, pdf);
        assert!(
            got.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;"),
            "a PDF is never shown inline"
        );
    }
}

#[tokio::test]
async fn s3_downloads_redirect_to_a_presigned_url() {
    let svc = Service::start(Kind::S3, 25 * MIB).await;
    let a = svc.user();
    let room = svc.room(&[&a]).await;
    let res = svc.upload_raw(&a, room, "a.txt", b"hello".to_vec()).await;
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let res = svc.call(&a, "GET", &format!("/api/files/{id}")).await;
    assert_eq!(res.status, 302);
    let location = res.headers["location"].to_str().unwrap();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    assert!(!location.contains(&svc.s3.as_ref().unwrap().1.secret_key));
}

#[tokio::test]
async fn ranges_are_served() {
    for kind in KINDS {
        let svc = Service::start(kind, 25 * MIB).await;
        let a = svc.user();
        let room = svc.room(&[&a]).await;
        let data = pattern(100_000);
        let text: Vec<u8> = data.iter().map(|b| b'a' + b % 26).collect();
        let res = svc.upload_raw(&a, room, "t.txt", text.clone()).await;
        let id = res.json()["id"].as_str().unwrap().to_owned();

        let res = svc.download(&a, &id, Some("bytes=100-199")).await;
        assert_eq!(res.status, 206, "{kind:?}");
        assert_eq!(res.body, text[100..200]);
        assert_eq!(res.headers["content-range"], "bytes 100-199/100000");
        let res = svc.download(&a, &id, Some("bytes=-10")).await;
        assert_eq!(res.status, 206);
        assert_eq!(res.body, text[99_990..]);
        let res = svc.download(&a, &id, Some("bytes=99990-")).await;
        assert_eq!(res.body, text[99_990..]);
        let res = svc.download(&a, &id, Some("bytes=100000-")).await;
        assert_eq!(res.status, 416, "{kind:?}");
        if kind == Kind::Local {
            assert_eq!(res.headers["content-range"], "bytes */100000");
            let full = svc.download(&a, &id, None).await;
            assert_eq!(full.headers["accept-ranges"], "bytes");
        }
    }
}

#[tokio::test]
async fn oversize_uploads_get_413_and_leave_nothing() {
    for kind in KINDS {
        // On S3 the limit is above one part: the first part is uploaded
        // before the limit is crossed, and the upload must be aborted.
        let max = 6 * MIB;
        let svc = Service::start(kind, max).await;
        let a = svc.user();
        let room = svc.room(&[&a]).await;
        let res = svc
            .upload_raw(&a, room, "big.png", png(9 * MIB as usize))
            .await;
        assert_eq!(res.status, 413, "{kind:?}: {:?}", res.json());
        assert_eq!(res.code(), "payload_too_large");
        let res = svc
            .upload_form(&a, room, "big.png", "image/png", &png(max as usize))
            .await;
        assert_eq!(res.status, 413, "{kind:?}: {:?}", res.json());
        assert_eq!(
            svc.leftovers().await,
            (0, 0),
            "{kind:?}: something left behind"
        );
        // Exactly the limit is fine.
        let exact = png(max as usize - 16);
        assert_eq!(exact.len() as u64, max);
        let res = svc.upload_raw(&a, room, "exact.png", exact).await;
        assert_eq!(res.status, 201, "{kind:?}");
        assert_eq!(svc.leftovers().await, (1, 0));
    }
}

#[tokio::test]
async fn disallowed_and_spoofed_types_are_refused() {
    for kind in KINDS {
        let svc = Service::start(kind, 25 * MIB).await;
        let a = svc.user();
        let room = svc.room(&[&a]).await;
        let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0payload".to_vec();
        let res = svc.upload_raw(&a, room, "tool", elf.clone()).await;
        assert_eq!(res.status, 415, "{kind:?}");
        assert_eq!(res.code(), "unsupported_media_type");
        // Claiming to be a PNG does not make it one.
        let res = svc
            .upload_form(&a, room, "cat.png", "image/png", &elf)
            .await;
        assert_eq!(res.status, 415, "{kind:?}");
        let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let res = svc.upload_raw(&a, room, "x.png", binary).await;
        assert_eq!(res.status, 415);
        assert_eq!(svc.leftovers().await, (0, 0));

        // HTML claiming to be an image is HTML, which is not accepted.
        let res = svc
            .upload_form(
                &a,
                room,
                "evil.png",
                "image/png",
                b"<script>alert(1)</script>",
            )
            .await;
        assert_eq!(res.status, 415, "{kind:?}");
        assert_eq!(svc.leftovers().await, (0, 0));

        // Text sent as an "image" is stored as what it is, and downloads
        // as an attachment, not inline.
        let res = svc
            .upload_form(
                &a,
                room,
                "notes.png",
                "image/png",
                b"just words, not an image",
            )
            .await;
        assert_eq!(res.status, 201);
        assert_eq!(res.json()["content_type"], "text/plain");
        let got = svc
            .download(&a, res.json()["id"].as_str().unwrap(), None)
            .await;
        assert_eq!(got.headers["content-type"], "text/plain; charset=utf-8");
        assert!(
            got.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
    }

    // The allow-list is configuration.
    let svc = Service::start_with(Kind::Local, |c| c.allowed_types = vec!["image/*".into()]).await;
    let a = svc.user();
    let room = svc.room(&[&a]).await;
    assert_eq!(
        svc.upload_raw(&a, room, "a.txt", b"hi".to_vec())
            .await
            .status,
        415
    );
    assert_eq!(svc.upload_raw(&a, room, "a.png", png(10)).await.status, 201);
}

#[tokio::test]
async fn odd_names_are_sanitised_and_never_reach_the_key() {
    let svc = Service::start(Kind::Local, 25 * MIB).await;
    let a = svc.user();
    let room = svc.room(&[&a]).await;
    let long = format!("{}.txt", "n".repeat(400));
    let cases: [(&str, &str); 7] = [
        ("../../etc/passwd", "passwd"),
        ("..%2F..%2Fsecret.txt", "secret.txt"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("a%00b%0Ac.txt", "abc.txt"),
        ("..", "file"),
        ("r%C3%A9sum%C3%A9.txt", "résumé.txt"),
        (&long, ""),
    ];
    for (raw, want) in cases {
        let res = svc.upload_raw(&a, room, raw, b"x".to_vec()).await;
        assert_eq!(res.status, 201, "{raw}");
        let meta = res.json();
        let name = meta["name"].as_str().unwrap();
        if want.is_empty() {
            assert!(name.len() <= 200 && name.ends_with(".txt"), "{name}");
        } else {
            assert_eq!(name, want, "{raw}");
        }
        let id = meta["id"].as_str().unwrap();
        // The object is named by its id, inside the store's directory.
        assert!(svc.files_dir.join("objects").join(id).is_file());
        let got = svc.download(&a, id, None).await;
        assert_eq!(got.body, b"x");
        let cd = got.headers["content-disposition"].to_str().unwrap();
        assert!(!cd.contains('/') && !cd.contains('\\'), "{cd}");
    }
    assert_eq!(svc.leftovers().await.0, cases.len());
    // A multipart file name gets the same treatment.
    let res = svc
        .upload_form(&a, room, "../../x.txt", "text/plain", b"y")
        .await;
    assert_eq!(res.json()["name"], "x.txt");
    // No name at all is a bad request.
    let res = crate::helpers::request(
        svc.addr,
        "POST",
        &format!("/api/files?room={room}"),
        &[("authorization", &format!("Bearer {}", a.token))],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn zero_byte_files_round_trip() {
    for kind in KINDS {
        let svc = Service::start(kind, 25 * MIB).await;
        let a = svc.user();
        let room = svc.room(&[&a]).await;
        let res = svc.upload_raw(&a, room, "empty.txt", vec![]).await;
        assert_eq!(res.status, 201, "{kind:?}");
        assert_eq!(res.json()["size"], 0);
        assert_eq!(res.json()["sha256"], sha256_hex(b""));
        let got = svc
            .download(&a, res.json()["id"].as_str().unwrap(), None)
            .await;
        assert_eq!(got.status, 200, "{kind:?}");
        assert!(got.body.is_empty());
    }
}

#[tokio::test]
async fn files_of_other_rooms_do_not_exist_for_strangers() {
    for kind in KINDS {
        let svc = Service::start(kind, 25 * MIB).await;
        let (a, stranger) = (svc.user(), svc.user());
        let room = svc.room(&[&a]).await;
        let _other = svc.room(&[&stranger]).await;
        let id = svc.upload_id(&a, room, "a.txt", b"mine").await;
        let missing = FileId::new().to_string();
        for path in [
            format!("/api/files/{id}"),
            format!("/api/files/{id}/meta"),
            format!("/api/files/{missing}"),
            format!("/api/files/{missing}/meta"),
            "/api/files/not-an-id".to_owned(),
        ] {
            let res = svc.call(&stranger, "GET", &path).await;
            assert_eq!(res.status, 404, "{kind:?} {path}");
            assert_eq!(res.json()["error"]["message"], "file not found");
        }
        assert_eq!(
            svc.call(&stranger, "DELETE", &format!("/api/files/{id}"))
                .await
                .status,
            404
        );
        // Uploading into a room one is not in: 404 as for no room.
        let res = svc
            .upload_raw(&stranger, room, "b.txt", b"x".to_vec())
            .await;
        assert_eq!(res.status, 404);
        assert_eq!(
            svc.upload_raw(&stranger, RoomId::new(), "b.txt", b"x".to_vec())
                .await
                .status,
            404
        );
        // Without a token: 401.
        let res =
            crate::helpers::request(svc.addr, "GET", &format!("/api/files/{id}"), &[], vec![])
                .await;
        assert_eq!(res.status, 401);

        // Leaving the room takes the access away.
        svc.member(room, a.id, false).await;
        assert_eq!(
            svc.call(&a, "GET", &format!("/api/files/{id}"))
                .await
                .status,
            404
        );
    }
}

#[tokio::test]
async fn deleted_files_are_gone_and_only_the_uploader_deletes() {
    for kind in KINDS {
        let svc = Service::start(kind, 25 * MIB).await;
        let (a, b) = (svc.user(), svc.user());
        let room = svc.room(&[&a, &b]).await;
        let id = svc.upload_id(&a, room, "a.txt", b"bye").await;
        let res = svc.call(&b, "DELETE", &format!("/api/files/{id}")).await;
        assert_eq!(res.status, 403, "{kind:?}");
        assert_eq!(svc.leftovers().await.0, 1);
        let res = svc.call(&a, "DELETE", &format!("/api/files/{id}")).await;
        assert_eq!(res.status, 204, "{kind:?}");
        assert_eq!(svc.leftovers().await, (0, 0));
        for user in [&a, &b] {
            assert_eq!(svc.download(user, &id, None).await.status, 404);
            let res = svc
                .call(user, "GET", &format!("/api/files/{id}/meta"))
                .await;
            assert_eq!(res.status, 404);
        }
        assert_eq!(
            svc.call(&a, "DELETE", &format!("/api/files/{id}"))
                .await
                .status,
            404
        );
    }
}

#[tokio::test]
async fn attachments_resolve_only_within_their_room() {
    let svc = Service::start(Kind::Local, 25 * MIB).await;
    let (a, b) = (svc.user(), svc.user());
    let room = svc.room(&[&a]).await;
    let other = svc.room(&[&b]).await;
    let mine: FileId = svc
        .upload_id(&a, room, "a.txt", b"a")
        .await
        .parse()
        .unwrap();
    let foreign: FileId = svc
        .upload_id(&b, other, "b.txt", b"b")
        .await
        .parse()
        .unwrap();
    let resolver = svc.app.resolver();
    let got = resolver.resolve(room, &[mine, mine]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, mine);
    assert_eq!(got[0].sha256, sha256_hex(b"a"));
    assert!(resolver.resolve(room, &[mine, foreign]).await.is_err());
    assert!(resolver.resolve(room, &[FileId::new()]).await.is_err());

    // The same over the internal HTTP endpoint.
    let path = format!("/internal/files/resolve?room={room}&ids={mine}");
    let res = crate::helpers::request(svc.addr, "GET", &path, &[], vec![]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()[0]["name"], Value::from("a.txt"));
    let path = format!("/internal/files/resolve?room={room}&ids={mine},{foreign}");
    let res = crate::helpers::request(svc.addr, "GET", &path, &[], vec![]).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.code(), "not_found");
}

#[tokio::test]
async fn a_room_creator_is_a_member_from_the_others_announcements() {
    let svc = Service::start(Kind::Local, 25 * MIB).await;
    let (owner, guest, later) = (svc.user(), svc.user(), svc.user());
    let room = RoomId::new();
    // db-writer announces the guests of a new room, not its creator.
    svc.announce(room, vec![owner.id, guest.id], guest.id, true)
        .await;
    for u in [&owner, &guest] {
        let res = svc.upload_raw(u, room, "a.txt", b"hi".to_vec()).await;
        assert_eq!(res.status, 201);
    }
    // A removal removes only the user it names, whatever the room lists.
    svc.announce(room, vec![owner.id, later.id], guest.id, false)
        .await;
    assert_eq!(
        svc.upload_raw(&guest, room, "b.txt", b"x".to_vec())
            .await
            .status,
        404
    );
    assert_eq!(
        svc.upload_raw(&owner, room, "b.txt", b"x".to_vec())
            .await
            .status,
        201
    );
}
