"""The interfaces every caio backend implements (Context and Operation)."""
import abc
from typing import Any, Callable, Optional, Union


class AbstractContext(abc.ABC):
    """A queue of file operations handed to one backend."""

    @property
    @abc.abstractmethod
    def max_requests(self) -> int:
        """How many operations may be pending at once."""
        raise NotImplementedError

    @abc.abstractmethod
    def submit(self, *aio_operations) -> int:
        """Start the operations; returns how many were accepted."""
        raise NotImplementedError(aio_operations)

    @abc.abstractmethod
    def cancel(self, *aio_operations) -> int:
        """Try to stop pending operations; returns how many were cancelled."""
        raise NotImplementedError(aio_operations)


class AbstractOperation(abc.ABC):
    """One read, write, fsync or fdsync and, once finished, its result."""

    @classmethod
    @abc.abstractmethod
    def read(cls, nbytes: int, fd: int, offset: int,
             priority: int = 0) -> "AbstractOperation":
        """An operation reading nbytes at offset."""
        raise NotImplementedError

    @classmethod
    @abc.abstractmethod
    def write(cls, payload_bytes: bytes, fd: int, offset: int,
              priority: int = 0) -> "AbstractOperation":
        """An operation writing payload_bytes at offset."""
        raise NotImplementedError

    @classmethod
    @abc.abstractmethod
    def fsync(cls, fd: int, priority: int = 0) -> "AbstractOperation":
        """An operation flushing data and metadata of fd (fsync(2))."""
        raise NotImplementedError

    @classmethod
    @abc.abstractmethod
    def fdsync(cls, fd: int, priority: int = 0) -> "AbstractOperation":
        """An operation flushing the data of fd (fdatasync(2))."""
        raise NotImplementedError

    @abc.abstractmethod
    def get_value(self) -> Union[bytes, int, None]:
        """bytes read, bytes written or None; raises OSError on failure."""
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def fileno(self) -> int:
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def offset(self) -> int:
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def payload(self) -> Optional[Union[bytes, memoryview]]:
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def nbytes(self) -> int:
        raise NotImplementedError

    @abc.abstractmethod
    def set_callback(self, callback: Callable[[int], Any]) -> bool:
        """callback(result) is called once the operation finished."""
        raise NotImplementedError


class ContextFullError(BlockingIOError, RuntimeError):
    """submit() found all max_requests slots taken (errno EAGAIN).

    A BlockingIOError with the right errno, and a RuntimeError like the
    "maximum simultaneous requests" error older caio versions raised.
    `accepted` is how many operations of that submit() went in (they run).
    """

    accepted = 0
