# agentless scanner: nobody logs in to a scanner (no sshd, no getty, every account locked); should
# a shell ever start, it gets a restrictive umask and an idle timeout.
umask 027
TMOUT=900
readonly TMOUT
export TMOUT
