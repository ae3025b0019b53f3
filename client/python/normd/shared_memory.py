"""Shared memory with a normd on the same host. A SharedBuffer is a memfd sealed
against shrinking, mapped here and handed to the server over its Unix socket; arrays
and tensors that live in one travel to Normalize and fit() as (region, offset)
references, and Normalize writes its output straight into one, so no tensor byte
crosses the socket."""
import fcntl
import mmap
import os
import socket
import sys
import uuid

import numpy as np

_ALIGNMENT = 64  # a cache line: every pool allocation starts on one


class SharedBuffer:
    """`nbytes` of memory shared with the server, registered as `name`. Closing it
    (or this process exiting or dying) unregisters it: the server watches the
    connection the memfd came on."""

    def __init__(self, client, nbytes: int, name: str = None):
        if nbytes <= 0:
            raise ValueError(f"a shared buffer needs a positive size, got {nbytes}")
        self.name = name or f"py-{uuid.uuid4().hex[:16]}"
        self.size = nbytes
        self._client = client
        path = client._handoff_socket()
        fd = os.memfd_create(self.name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, nbytes)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self._map = mmap.mmap(fd, nbytes)
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._socket.connect(path)
                socket.send_fds(self._socket, [b"region"], [fd])
                answer = self._socket.recv(512).decode(errors="replace")
                words = answer.split()
                if len(words) < 2 or words[0] != "OK":
                    raise ValueError(f"the server refused the shared buffer: {answer}")
                client._register_region(self.name, words[1])
            except BaseException:
                self._socket.close()
                raise
        finally:
            os.close(fd)  # the mapping and the server's copy keep the memory
        self._bytes = np.frombuffer(self._map, dtype=np.uint8)
        self.address = self._bytes.ctypes.data
        self._closed = False

    def array(self, shape, dtype=np.float32, offset: int = 0) -> np.ndarray:
        """A writable numpy view of the buffer's bytes at `offset`."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if offset < 0 or offset + count * dtype.itemsize > self.size:
            raise ValueError(f"{count} x {dtype} at offset {offset} does not fit in "
                             f"{self.size} bytes")
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=offset).reshape(shape)

    def tensor(self, shape, dtype=None, offset: int = 0):
        """A torch tensor over the buffer's bytes at `offset` (float32 by default;
        bfloat16 too)."""
        torch = sys.modules.get("torch") or __import__("torch")
        dtype = dtype or torch.float32
        if dtype == torch.bfloat16:
            return torch.from_numpy(self.array(shape, np.int16, offset)).view(torch.bfloat16)
        numpy_dtype = torch.empty((), dtype=dtype).numpy().dtype
        return torch.from_numpy(self.array(shape, numpy_dtype, offset))

    def locate(self, address: int, nbytes: int):
        """The offset of [address, address + nbytes) in this buffer, or None."""
        if self._closed or address < self.address or address + nbytes > self.address + self.size:
            return None
        return address - self.address

    def close(self) -> None:
        """Unregisters the buffer. Views of it stay readable until they are dropped."""
        if self._closed:
            return
        self._closed = True
        self._client._forget_buffer(self)
        self._socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SharedPool:
    """Arrays and tensors carved from one SharedBuffer, each aligned to 64 bytes:
    allocate what a loop needs once, and reuse it on every call. clear() makes the
    whole buffer available again (arrays handed out before then must not be used)."""

    def __init__(self, client, nbytes: int, name: str = None):
        self.buffer = SharedBuffer(client, nbytes, name)
        self._used = 0

    def _take(self, nbytes: int) -> int:
        offset = -(-self._used // _ALIGNMENT) * _ALIGNMENT
        if offset + nbytes > self.buffer.size:
            raise MemoryError(f"the shared pool has {self.buffer.size - offset} bytes left, "
                              f"{nbytes} were asked for")
        self._used = offset + nbytes
        return offset

    def array(self, shape, dtype=np.float32) -> np.ndarray:
        dtype = np.dtype(dtype)
        offset = self._take(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        return self.buffer.array(shape, dtype, offset)

    def tensor(self, shape, dtype=None):
        torch = sys.modules.get("torch") or __import__("torch")
        dtype = dtype or torch.float32
        itemsize = torch.empty((), dtype=dtype).element_size()
        offset = self._take(int(np.prod(shape, dtype=np.int64)) * itemsize)
        return self.buffer.tensor(shape, dtype, offset)

    def clear(self) -> None:
        self._used = 0

    def close(self) -> None:
        self.buffer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
