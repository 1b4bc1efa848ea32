// Reads "A\tB" lines on stdin and prints "A < B", "A = B" or "A > B" as Maven's own
// ComparableVersion orders them. Run: java -cp /usr/share/java/maven-artifact-3.x.jar MavenOracle.java
import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class MavenOracle {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        String line;
        while ((line = in.readLine()) != null) {
            String[] p = line.split("\t", 2);
            int c = new ComparableVersion(p[0]).compareTo(new ComparableVersion(p[1]));
            System.out.println(p[0] + (c < 0 ? " < " : c > 0 ? " > " : " = ") + p[1]);
        }
    }
}
