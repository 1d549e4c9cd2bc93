#!/usr/bin/env bash
# Java driver (mongo-java-driver 3.6 from Debian libmongodb-java) interop program; see Interop.java.
# Compiles into $WORK_DIR (never into the repository) and runs it.
set -euo pipefail
cd "$(dirname "$0")"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}" "${WORK_DIR:?WORK_DIR must be set}"
JARS=/usr/share/java
CP="$JARS/mongodb-driver.jar:$JARS/mongodb-driver-core.jar:$JARS/bson.jar"
for jar in mongodb-driver.jar mongodb-driver-core.jar bson.jar; do
    [ -f "$JARS/$jar" ] || { echo "FAIL: $JARS/$jar is missing (install libmongodb-java)"; exit 1; }
done
mkdir -p "$WORK_DIR/java-classes"
if ! javac -encoding UTF-8 -nowarn -cp "$CP" -d "$WORK_DIR/java-classes" Interop.java > "$WORK_DIR/javac.log" 2>&1; then
    cat "$WORK_DIR/javac.log"
    echo "FAIL: javac could not compile Interop.java"
    exit 1
fi
# Small heap and tiered-compilation shortcut: the program is short-lived.
DRIVER_JAR=$(basename "$(readlink -f "$JARS/mongodb-driver.jar")" .jar)
exec java -Xshare:auto -XX:TieredStopAtLevel=1 -Xmx256m -Dinterop.driver="$DRIVER_JAR" -cp "$WORK_DIR/java-classes:$CP" Interop
