"""PDFs written out by hand for the tests: ordinary notes and the shapes that cost a reader."""

from __future__ import annotations

import zlib


def text_ops(line: str, times: int = 1) -> bytes:
    """A content stream showing ``line`` (Helvetica, font F1) ``times`` times."""
    return b"BT /F1 12 Tf 72 720 Td " + b"(%s ) Tj " % line.encode() * times + b"ET"


def pdf(
    streams: list[bytes],
    page_streams: list[int],
    forms: list[bytes] = (),  # type: ignore[assignment]
) -> bytes:
    """A PDF whose page N shows content stream ``streams[page_streams[N]]`` (compressed with
    Flate); pages may share a stream. Every page's resources name font F1 and the form
    XObjects X0, X1, ... (``forms``, each a content stream of its own)."""
    first_stream = 4
    first_form = first_stream + len(streams)
    first_page = first_form + len(forms)
    kids = b" ".join(b"%d 0 R" % (first_page + n) for n in range(len(page_streams)))
    xobjects = b" ".join(b"/X%d %d 0 R" % (n, first_form + n) for n in range(len(forms)))
    resources = b"<< /Font << /F1 3 0 R >> /XObject << %s >> >>" % xobjects
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_streams)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for content in streams:
        packed = zlib.compress(content, 9)
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)
        )
    for content in forms:
        packed = zlib.compress(content, 9)
        objects.append(
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources %s "
            b"/Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
            % (b"<< /Font << /F1 3 0 R >> >>", len(packed), packed)
        )
    for index in page_streams:
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %s "
            b"/Contents %d 0 R >>" % (resources, first_stream + index)
        )
    return assemble(objects)


def assemble(objects: list[bytes]) -> bytes:
    """A PDF file of the numbered objects (object 1 the catalog), with its cross-reference
    table and trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
